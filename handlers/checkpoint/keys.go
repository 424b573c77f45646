// Package checkpoint signs the head of the event log: every so many events or minutes and
// at shutdown, orderd signs the running log digest with its own Ed25519 key and appends the
// signature to the log (audit.CheckpointType), so that a chain rewritten with recomputed
// digests is caught by orderctl verify-chain.
package checkpoint

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/einvoice/spaceorders/handlers/tokens"
)

// The files of a data folder. The checkpoint key is not the token-signing key: whoever
// issues tokens must not be able to re-sign the log, nor the other way round.
const (
	KeyFileName       = "checkpoint-signing-key.pem"
	PublicKeyFileName = "checkpoint-public.pem"
)

// KeyFile is the private checkpoint key of a data folder.
func KeyFile(dataDir string) string { return filepath.Join(dataDir, KeyFileName) }

// PublicKeyFile is its public half, written beside it for auditors.
func PublicKeyFile(dataDir string) string { return filepath.Join(dataDir, PublicKeyFileName) }

// LoadOrCreateKey reads the data folder's checkpoint key, making it (mode 0600) and its
// public file when there is none.
func LoadOrCreateKey(dataDir string) (key ed25519.PrivateKey, created bool, err error) {
	key, created, err = tokens.LoadOrCreateKey(KeyFile(dataDir))
	if err != nil {
		return nil, false, fmt.Errorf("checkpoint key: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if _, err := os.Stat(PublicKeyFile(dataDir)); errors.Is(err, os.ErrNotExist) {
		b, err := tokens.EncodePublicKey(pub)
		if err != nil {
			return nil, false, err
		}
		if err := os.WriteFile(PublicKeyFile(dataDir), b, 0o644); err != nil {
			return nil, false, fmt.Errorf("checkpoint public key: %w", err)
		}
	}
	return key, created, nil
}

// PublicKeys are the checkpoint keys a data folder vouches for: its public key file and the
// public half of its private key (none when the folder has neither).
func PublicKeys(dataDir string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, f := range []string{PublicKeyFile(dataDir), KeyFile(dataDir)} {
		k, err := tokens.LoadPublicKey(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 || !keys[0].Equal(k) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// LoadPublicKeys reads PEM files of public (or private) checkpoint keys.
func LoadPublicKeys(files []string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, f := range files {
		k, err := tokens.LoadPublicKey(f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}
