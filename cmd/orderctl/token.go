package main

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

func runToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", "--role <role> --sub <subject> [flags]",
		"Prints a bearer token on standard output, and on standard error which key signed it.")
	var data string
	fs.StringAs(&data, "data", "ORDERD_DATA", "./data", "orderd's data folder: the token is signed with its development key (made if the folder has none yet)")
	keyFile := fs.String("key", "", "PEM file of an Ed25519 private key to sign with instead of the data folder's")
	role := fs.String("role", "", "role: customer, operator, payments, finance or auditor")
	sub := fs.String("sub", "", "subject: for a customer, the owner id of its subscriptions")
	ttl := fs.Duration("ttl", 24*time.Hour, fmt.Sprintf("how long the token is valid, at most %s", tokens.MaxTokenTTL))
	if err := fs.parse(args, stdout, 0); err != nil {
		return err
	}
	if *role == "" || *sub == "" {
		return usagef("--role and --sub are required")
	}
	if *ttl <= 0 || *ttl > tokens.MaxTokenTTL {
		return usagef("--ttl %s: give more than 0 and at most %s", *ttl, tokens.MaxTokenTTL)
	}
	var key ed25519.PrivateKey
	var err error
	used := *keyFile
	if used != "" {
		key, err = tokens.LoadPrivateKey(used)
	} else {
		// A mistyped folder must not quietly get a key of its own, whose tokens every
		// orderd would then refuse.
		if st, statErr := os.Stat(data); statErr != nil || !st.IsDir() {
			return fmt.Errorf("no data folder %s: give orderd's --data folder, or --key", data)
		}
		used = tokens.DevKeyFile(data)
		var created bool
		key, created, err = tokens.LoadOrCreateKey(used)
		if created {
			fmt.Fprintf(stderr, "orderctl token: made a new development key %s; an orderd already running on this folder verifies with the key it started with\n", used)
		}
	}
	if err != nil {
		return err
	}
	tok, err := tokens.Mint(key, tokens.Role(*role), *sub, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "orderctl token: signed with %s (public key %s)\n", used, keyID(key))
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// keyID is a short fingerprint of the public half, so an operator can tell two keys apart:
// the same one the checkpoints name their keys by.
func keyID(key ed25519.PrivateKey) string {
	return "sha256:" + audit.KeyID(key.Public().(ed25519.PublicKey))
}
