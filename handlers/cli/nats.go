package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// NATSCredentials are how a binary proves itself to a NATS server: a user and its password,
// or a user nkey seed file. Given both, the nkey is used (orderd's embedded server admits
// both, and one way of connecting is enough).
type NATSCredentials struct{ User, Password, Seed string }

// Add puts the credentials in a table: --nats-user and --nats-nkey-seed, the password from
// its variable only (passwordEnv, e.g. ORDERD_NATS_PASSWORD).
func (c *NATSCredentials) Add(s *Settings, passwordEnv string) {
	s.String(&c.User, "nats-user", "", "NATS user to connect as; the password only from "+passwordEnv)
	s.Secret(&c.Password, passwordEnv, "password of --nats-user")
	s.String(&c.Seed, "nats-nkey-seed", "", "file of a NATS user nkey seed to connect with")
}

// ErrUserWithoutPassword: a user was given without its password, or the reverse.
var ErrUserWithoutPassword = errors.New("a NATS user and its password go together: set both or neither")

// Options are the connection's options for these credentials (none when there are none).
func (c NATSCredentials) Options() ([]nats.Option, error) {
	if (c.User == "") != (c.Password == "") {
		return nil, ErrUserWithoutPassword
	}
	switch {
	case c.Seed != "":
		o, err := nats.NkeyOptionFromSeed(c.Seed)
		if err != nil {
			return nil, fmt.Errorf("nkey seed %s: %w", c.Seed, err)
		}
		return []nats.Option{o}, nil
	case c.User != "":
		return []nats.Option{nats.UserInfo(c.User, c.Password)}, nil
	}
	return nil, nil
}

// PublicKey is the public user nkey ("U...") of the seed, for a server to admit; "" when
// there is no seed.
func (c NATSCredentials) PublicKey() (string, error) {
	if c.Seed == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.Seed)
	if err != nil {
		return "", err
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return "", fmt.Errorf("%s: not a NATS user nkey seed: %w", c.Seed, err)
	}
	defer kp.Wipe()
	return kp.PublicKey()
}
