package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nkeys"
)

// orderd and the mailer prove themselves to NATS the same way: a user with its password,
// or the nkey seed, which wins when both are given; a user without password is refused.
func TestNATSCredentials(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	file := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(file, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	if opts, err := (NATSCredentials{}).Options(); err != nil || len(opts) != 0 {
		t.Fatalf("no credentials: %d options, %v", len(opts), err)
	}
	if _, err := (NATSCredentials{User: "mailer"}).Options(); !errors.Is(err, ErrUserWithoutPassword) {
		t.Fatalf("a user without password: %v", err)
	}
	if opts, err := (NATSCredentials{User: "mailer", Password: "pw"}).Options(); err != nil || len(opts) != 1 {
		t.Fatalf("a user: %d options, %v", len(opts), err)
	}
	both := NATSCredentials{User: "mailer", Password: "pw", Seed: file}
	if opts, err := both.Options(); err != nil || len(opts) != 1 {
		t.Fatalf("user and nkey: %d options, %v (want the nkey's alone)", len(opts), err)
	}
	if got, err := both.PublicKey(); err != nil || got != pub {
		t.Fatalf("public key %q, %v; want %q", got, err, pub)
	}
	bad := filepath.Join(t.TempDir(), "bad.nk")
	_ = os.WriteFile(bad, []byte("not a seed"), 0o600)
	if _, err := (NATSCredentials{Seed: bad}).PublicKey(); err == nil {
		t.Fatal("a file that is no seed gave a public key")
	}
	if got, err := (NATSCredentials{}).PublicKey(); got != "" || err != nil {
		t.Fatalf("no seed: %q, %v", got, err)
	}
}
