package app

import (
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/einvoice/spaceorders/eventstore/jetstream"
)

// natsAuth is who the embedded NATS server admits (--nats-user with ORDERD_NATS_PASSWORD,
// the public key of --nats-nkey-seed) and how orderd's own NATS connections prove it:
// with the nkey when one is configured, else as the user. All empty: no credentials.
type natsAuth struct {
	users   []jetstream.User
	nkeys   []string
	connect []nats.Option
}

func (c Config) natsAuth() (natsAuth, error) {
	var a natsAuth
	if c.NATSUser != "" {
		a.users = []jetstream.User{{Name: c.NATSUser, Password: c.NATSPassword}}
		a.connect = []nats.Option{nats.UserInfo(c.NATSUser, c.NATSPassword)}
	}
	if c.NATSNKeySeed != "" {
		b, err := os.ReadFile(c.NATSNKeySeed)
		if err != nil {
			return a, fmt.Errorf("--nats-nkey-seed (ORDERD_NATS_NKEY_SEED): %w", err)
		}
		kp, err := nkeys.ParseDecoratedUserNKey(b)
		if err != nil {
			return a, fmt.Errorf("--nats-nkey-seed (ORDERD_NATS_NKEY_SEED) %s: not a NATS user nkey seed: %w", c.NATSNKeySeed, err)
		}
		pub, err := kp.PublicKey()
		kp.Wipe()
		if err != nil {
			return a, fmt.Errorf("--nats-nkey-seed (ORDERD_NATS_NKEY_SEED) %s: %w", c.NATSNKeySeed, err)
		}
		opt, err := nats.NkeyOptionFromSeed(c.NATSNKeySeed)
		if err != nil {
			return a, fmt.Errorf("--nats-nkey-seed (ORDERD_NATS_NKEY_SEED) %s: %w", c.NATSNKeySeed, err)
		}
		a.nkeys = []string{pub}
		a.connect = []nats.Option{opt}
	}
	return a, nil
}
