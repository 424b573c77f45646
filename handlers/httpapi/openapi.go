package httpapi

import (
	"bytes"
	_ "embed"
)

//go:embed openapi.json
var openapi []byte

// OpenAPI is the OpenAPI 3.1 document of the routes of the contract, served at
// /v1/openapi.json.
func OpenAPI() []byte { return bytes.Clone(openapi) }
