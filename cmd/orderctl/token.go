package main

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/einvoice/spaceorders/handlers/httpapi"
)

func runToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("orderctl token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "orderd's data `folder`: the token is signed with its development key (made if missing)")
	keyFile := fs.String("key", "", "PEM `file` of an Ed25519 private key to sign with instead of the data folder's")
	role := fs.String("role", "", "`role`: customer, operator, payments, finance or auditor")
	sub := fs.String("sub", "", "`subject`: for a customer, the owner id of its subscriptions")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *role == "" || *sub == "" {
		return errors.New("--role and --sub are required")
	}
	var key ed25519.PrivateKey
	var err error
	if *keyFile != "" {
		key, err = httpapi.LoadPrivateKey(*keyFile)
	} else {
		key, _, err = httpapi.LoadOrCreateKey(httpapi.DevKeyFile(*data))
	}
	if err != nil {
		return err
	}
	tok, err := httpapi.Mint(key, httpapi.Role(*role), *sub, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
