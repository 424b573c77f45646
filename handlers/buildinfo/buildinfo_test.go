package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestLineNamesTheProgramAndTheToolchain(t *testing.T) {
	l := Line("orderd")
	if !strings.HasPrefix(l, "orderd ") || !strings.Contains(l, runtime.Version()) {
		t.Fatalf("Line = %q", l)
	}
}
