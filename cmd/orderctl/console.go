package main

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/einvoice/spaceorders/handlers/tokens"
)

// maxLinkTTL bounds a console link's lifetime: the link is a token in an address, which
// browsers keep in their history.
const maxLinkTTL = 12 * time.Hour

func init() {
	subcommands["console-link"] = subcommand{"print a short-lived link that signs a finance, auditor or operator user in to the console", runConsoleLink}
}

func runConsoleLink(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("console-link", "--sub <subject> [flags]",
		"Prints a link on standard output that signs in to orderd's console at /console/; on standard error, who and until when.")
	var data string
	fs.StringAs(&data, "data", "ORDERD_DATA", "./data", "orderd's data folder: the link's token is signed with its development key")
	keyFile := fs.String("key", "", "PEM file of an Ed25519 private key to sign with instead of the data folder's")
	role := fs.String("role", "finance", "role: finance, auditor or operator")
	sub := fs.String("sub", "", "subject: who signs in (logged with what they do)")
	ttl := fs.Duration("ttl", 15*time.Minute, "how long the link, and the session it opens, last (at most 12h)")
	server := fs.String("server", "http://127.0.0.1:8080", "orderd's base URL, as the other commands that talk to a running orderd")
	if err := fs.parse(args, stdout, 0); err != nil {
		return err
	}
	switch r := tokens.Role(*role); {
	case *sub == "":
		return usagef("--sub is required")
	case r != tokens.RoleFinance && r != tokens.RoleAuditor && r != tokens.RoleOperator:
		return usagef("--role %q: the console is for finance, auditor and operator", *role)
	case *ttl <= 0 || *ttl > maxLinkTTL:
		return usagef("--ttl %s: give more than 0 and at most %s", *ttl, maxLinkTTL)
	}
	base, err := url.Parse(strings.TrimRight(*server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usagef("--server %q: give http(s)://host:port", *server)
	}
	var key ed25519.PrivateKey
	if *keyFile != "" {
		key, err = tokens.LoadPrivateKey(*keyFile)
	} else {
		// Never make a key here: a link signed by a new key would only be refused.
		key, err = tokens.LoadPrivateKey(tokens.DevKeyFile(data))
	}
	if err != nil {
		return fmt.Errorf("signing key: %w (--data names orderd's data folder, --key a private key)", err)
	}
	tok, err := tokens.Mint(key, tokens.Role(*role), *sub, *ttl)
	if err != nil {
		return err
	}
	link := base.JoinPath("console", "login")
	link.RawQuery = url.Values{"token": {tok}}.Encode()
	fmt.Fprintf(stderr, "orderctl console-link: signs %s in as %s until %s UTC (key %s)\n", *sub, *role,
		time.Now().Add(*ttl).UTC().Format("2006-01-02 15:04"), keyID(key))
	_, err = fmt.Fprintln(stdout, link.String())
	return err
}
