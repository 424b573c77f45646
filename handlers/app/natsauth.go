package app

import (
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/handlers/cli"
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
	creds := cli.NATSCredentials{User: c.NATSUser, Password: c.NATSPassword, Seed: c.NATSNKeySeed}
	connect, err := creds.Options()
	if err != nil {
		return a, fmt.Errorf("--nats-user, --nats-nkey-seed (ORDERD_NATS_*): %w", err)
	}
	pub, err := creds.PublicKey()
	if err != nil {
		return a, fmt.Errorf("--nats-nkey-seed (ORDERD_NATS_NKEY_SEED): %w", err)
	}
	a.connect = connect
	if c.NATSUser != "" {
		a.users = []jetstream.User{{Name: c.NATSUser, Password: c.NATSPassword}}
	}
	if pub != "" {
		a.nkeys = []string{pub}
	}
	return a, nil
}
