// Package cli holds what every binary's command line shares: which build it is (--version)
// and the logger (readable lines at a terminal, JSON lines for collectors).
package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is "<program> <version> (<revision>[+modified], <time>, <go version>)": the module
// version when built from a tagged module, else "devel", and the VCS stamp where the build
// had one (go build in a git checkout; go run has none).
func Version(program string) string {
	version, details := "devel", []string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		var rev, at string
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" {
			rev = rev[:min(len(rev), 12)]
			if modified {
				rev += "+modified"
			}
			details = append(details, rev)
		}
		if at != "" {
			details = append(details, at)
		}
	}
	details = append(details, runtime.Version())
	return fmt.Sprintf("%s %s (%s)", program, version, strings.Join(details, ", "))
}
