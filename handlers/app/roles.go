package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/lease"
)

// sharedStore: other processes may write the event store (replicas of orderd on an
// external store, a mailer of its own on the embedded one's NATS), so the command
// handler checks its cache against the store before trusting it.
func (c Config) sharedStore() bool {
	kind, _ := c.StoreKind()
	return kind != StoreEmbedded || c.NATSListen != ""
}

// replicaName is Config.ReplicaName, or the host name with a random suffix (two replicas
// on one host, or a container restarted with the same name, are told apart).
func (c Config) replicaName() string {
	if c.ReplicaName != "" {
		return c.ReplicaName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "orderd"
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// openLeases opens the bucket of the roles done once per deployment, on the notifications'
// NATS, which every replica of a deployment shares.
func (a *App) openLeases(ctx context.Context, js natsjs.JetStream) error {
	cfg := a.Config
	kv, err := lease.OpenBucket(ctx, js, cfg.LeaseTTL, cfg.NATSReplicas)
	if err != nil {
		return fmt.Errorf("--nats-url (ORDERD_NATS_URL): %w", err)
	}
	name := cfg.replicaName()
	a.Leases = lease.New(kv, name, cfg.LeaseTTL, a.Log.Named("lease"), a.Registry)
	a.Log.Info("replica", zap.String("name", name), zap.Duration("lease_ttl", cfg.LeaseTTL))
	return nil
}

// GoLeased adds a background part that runs only while this replica holds the role's
// lease (see Go): another replica takes over within --lease-ttl when this one dies.
func (a *App) GoLeased(role string, run func(context.Context) error) {
	a.Go(role, func(ctx context.Context) error { return a.Leases.Run(ctx, role, run) })
}

// roleChecks say, in /readyz, which replica holds each role done once per deployment. A
// replica standing by is ready: it serves the API, and takes the role over when needed.
func (a *App) roleChecks() []httpapi.Check {
	if a.Leases == nil {
		return nil
	}
	st := a.Leases.Status()
	sort.Slice(st, func(i, j int) bool { return st[i].Role < st[j].Role })
	out := make([]httpapi.Check, 0, len(st))
	for _, s := range st {
		c := httpapi.Check{Name: "role:" + s.Role, Ready: true}
		switch {
		case s.Held:
			c.Detail = fmt.Sprintf("held by this replica (%s) since %s", s.Holder, s.Since.UTC().Format(time.RFC3339))
		case s.Holder != "":
			c.Detail = fmt.Sprintf("standby: held by %s (this replica is %s)", s.Holder, a.Leases.Holder())
		default:
			c.Detail = fmt.Sprintf("standby: taking it over (this replica is %s)", a.Leases.Holder())
		}
		out = append(out, c)
	}
	return out
}
