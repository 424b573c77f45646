package cli

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersionNamesTheProgramAndTheToolchain(t *testing.T) {
	l := Version("orderd")
	if !strings.HasPrefix(l, "orderd ") || !strings.Contains(l, runtime.Version()) {
		t.Fatalf("Version = %q", l)
	}
}
