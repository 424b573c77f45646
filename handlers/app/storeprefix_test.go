package app

import (
	"io"
	"strings"
	"testing"
)

// The KurrentDB stream prefix: from the environment or the flag (which wins), refused
// for another store or in a shape KurrentDB reserves.
func TestStorePrefixSetting(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	esdb := map[string]string{"ORDERD_STORE": "esdb://k:2113?tls=false", "ORDERD_STORE_PREFIX": "spaceorders."}
	c, err := ParseConfig(nil, env(esdb), io.Discard)
	if err != nil || c.StorePrefix != "spaceorders." {
		t.Fatalf("from the environment: %q, %v", c.StorePrefix, err)
	}
	c, err = ParseConfig([]string{"--store-prefix", "so:"}, env(esdb), io.Discard)
	if err != nil || c.StorePrefix != "so:" {
		t.Fatalf("the flag over the environment: %q, %v", c.StorePrefix, err)
	}
	if c, err = ParseConfig(nil, env(map[string]string{"ORDERD_STORE": "esdb://k:2113?tls=false"}), io.Discard); err != nil || c.StorePrefix != "" {
		t.Fatalf("default: %q, %v", c.StorePrefix, err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--store-prefix", "so."}, map[string]string{}},
		{[]string{"--store-prefix", "so.", "--store", "nats://n:4222"}, map[string]string{}},
		{[]string{"--store-prefix", "$so."}, map[string]string{"ORDERD_STORE": "esdb://k:2113?tls=false"}},
		{[]string{"--store-prefix", "so ."}, map[string]string{"ORDERD_STORE": "esdb://k:2113?tls=false"}},
	} {
		if _, err := ParseConfig(tc.args, env(tc.env), io.Discard); err == nil || !strings.Contains(err.Error(), "--store-prefix (ORDERD_STORE_PREFIX)") {
			t.Errorf("%v: error %v, want one naming --store-prefix", tc.args, err)
		}
	}
}
