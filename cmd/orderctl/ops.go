package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/einvoice/spaceorders/handlers/tokens"
)

// Operators' subcommands for a real deployment: the signing key pair, and a health probe
// that works in an image with no shell or curl (docker-compose's health checks use it).
func init() {
	subcommands["keygen"] = subcommand{"make an Ed25519 key pair: the private key signs tokens, orderd verifies with the public one", runKeygen}
	subcommands["health"] = subcommand{"exit 0 when a URL answers 2xx within the timeout (for health checks)", runHealth}
}

func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", "[flags]", "")
	dir := fs.String("out", "./keys", "folder to write jwt-private.pem (mode 0600) and jwt-public.pem into")
	if err := fs.parse(args, stdout, 0); err != nil {
		return err
	}
	priv := filepath.Join(*dir, "jwt-private.pem")
	if _, err := os.Stat(priv); err == nil {
		return fmt.Errorf("%s exists: keygen never overwrites a key", priv)
	}
	key, _, err := tokens.LoadOrCreateKey(priv)
	if err != nil {
		return err
	}
	pemBytes, err := tokens.EncodePublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	pub := filepath.Join(*dir, "jwt-public.pem")
	if err := os.WriteFile(pub, pemBytes, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "private key: %s (keep it secret; orderctl token --key uses it)\npublic key:  %s (give it to orderd: --jwt-public-key, ORDERD_JWT_PUBLIC_KEYS)\n", priv, pub)
	return nil
}

func runHealth(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("health", "[flags]", "")
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "URL to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.parse(args, stdout, 0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return errors.New(resp.Status)
	}
	fmt.Fprintln(stdout, resp.Status)
	return nil
}
