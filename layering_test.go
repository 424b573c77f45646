package spaceorders_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/einvoice/spaceorders"

// Imports flow one way: cmd -> handlers -> (projections, eventstore) -> domain.
// DESIGN.md: "domain/ imports nothing of the others. projections/ and eventstore/ never
// import handlers/. cmd/ only wires." A rule holds for a package's whole dependency tree,
// and for its tests too.
var layers = []rule{
	{from: "domain", never: []string{""}, why: "domain imports no package of this module"},
	{from: "projections", never: []string{"handlers"}, why: "projections never import handlers"},
	{from: "eventstore", never: []string{"handlers"}, why: "eventstore never imports handlers"},
	{from: "", never: []string{"cmd"}, why: "nothing imports cmd"},
	{from: "handlers/tokens", never: []string{"handlers", "domain", "eventstore", "projections"}, why: "tokens stand alone: the HTTP transport and orderctl use them, never the reverse"},
	// DESIGN.md: "the mailer reads a small, versioned notifications contract, not the
	// domain's internal events". Its tests may write domain events to a real log.
	{from: "handlers/notifications", never: []string{""}, why: "the notifications contract depends on no package of this module"},
	{from: "handlers/mailer", never: []string{"domain", "eventstore", "handlers/command", "handlers/relay"},
		why: "the mailer reads the notifications contract, not the domain", codeOnly: true},
}

// rule: no package under from (relative to the module; "" is the whole module) depends
// on a package under any of never ("" is any package of the module but from's own). With
// codeOnly, the imports of from's tests are not judged.
type rule struct {
	from     string
	never    []string
	why      string
	codeOnly bool
}

func TestLayering(t *testing.T) {
	graph := moduleGraph(t)
	if _, ok := graph.imports[module+"/domain"]; !ok {
		t.Fatalf("go list found no domain package among %d", len(graph.imports))
	}
	for _, v := range violations(graph, layers) {
		t.Error(v)
	}
}

// The checker catches what it should, on a made-up graph (a fake: no such packages exist).
func TestLayeringCatchesEveryKindOfViolation(t *testing.T) {
	p := func(rel string) string { return module + "/" + rel }
	fake := packageGraph{
		imports: map[string][]string{
			p("domain"):                       {"fmt", p("projections/clock")},
			p("projections/clock"):            nil,
			p("eventstore"):                   {p("domain"), p("eventstore/codec")},
			p("eventstore/codec"):             {p("handlers/relay")}, // so eventstore reaches handlers indirectly
			p("eventstore/storetest"):         {p("domain")},
			p("projections"):                  {p("cmd/orderd")},
			p("projections/quota"):            {p("eventstore"), p("domain")},
			p("handlers/relay"):               {p("domain")},
			p("handlers/httpapi"):             {p("projections"), p("eventstore"), p("handlers/relay")},
			p("cmd/orderd"):                   {p("handlers/relay")},
			p("cmd/orderctl"):                 {p("cmd/orderd")},
			p("domainextra"):                  {p("handlers/relay")}, // not under domain/
			p("handlers/mailer"):              {p("handlers/notifications"), p("handlers/mailer/render")},
			p("handlers/mailer/render"):       {p("handlers/relay")}, // so the mailer reaches domain indirectly
			p("handlers/notifications"):       {"encoding/json", p("handlers/notifications/dates")},
			p("handlers/notifications/dates"): {p("eventstore")},
		},
		testImports: map[string][]string{
			p("domain"):           {p("handlers/httpapi")},
			p("handlers/httpapi"): {p("cmd/orderd")},
			// The mailer's tests run the real log: not the mailer's dependency.
			p("handlers/mailer"): {p("handlers/command"), p("eventstore")},
		},
	}
	got := strings.Join(violations(fake, layers), "\n")
	for _, want := range []string{
		"domain imports no package of this module: " + p("domain") + " depends on " + p("projections/clock"),
		"domain imports no package of this module: " + p("domain") + " depends on " + p("handlers/httpapi"),
		"projections never import handlers: " + p("projections") + " depends on " + p("handlers/relay"),
		"projections never import handlers: " + p("projections/quota") + " depends on " + p("handlers/relay"),
		"eventstore never imports handlers: " + p("eventstore") + " depends on " + p("handlers/relay"),
		"eventstore never imports handlers: " + p("eventstore/codec") + " depends on " + p("handlers/relay"),
		"nothing imports cmd: " + p("projections") + " depends on " + p("cmd/orderd"),
		"nothing imports cmd: " + p("cmd/orderctl") + " depends on " + p("cmd/orderd"),
		"nothing imports cmd: " + p("handlers/httpapi") + " depends on " + p("cmd/orderd"),
		"the mailer reads the notifications contract, not the domain: " + p("handlers/mailer") + " depends on " + p("handlers/relay"),
		"the mailer reads the notifications contract, not the domain: " + p("handlers/mailer") + " depends on " + p("domain"),
		"the mailer reads the notifications contract, not the domain: " + p("handlers/mailer/render") + " depends on " + p("domain"),
		"the notifications contract depends on no package of this module: " + p("handlers/notifications") + " depends on " + p("eventstore"),
		"the notifications contract depends on no package of this module: " + p("handlers/notifications/dates") + " depends on " + p("domain"),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missed %q in:\n%s", want, got)
		}
	}
	// Tests are not imported: domain's test imports are domain's problem alone.
	for _, innocent := range []string{"domainextra", "eventstore/storetest", "handlers/relay", "cmd/orderd"} {
		if strings.Contains(got, p(innocent)+" depends") {
			t.Errorf("%s blamed wrongly:\n%s", innocent, got)
		}
	}
	// A rule on code alone does not judge the tests' imports.
	if strings.Contains(got, p("handlers/mailer")+" depends on "+p("handlers/command")) {
		t.Errorf("the mailer blamed for its tests' imports:\n%s", got)
	}
}

// packageGraph: what each package imports, and what its tests import besides.
type packageGraph struct {
	imports, testImports map[string][]string
}

// violations lists, for each rule, each package that depends (directly or not) on one it
// must never depend on.
func violations(graph packageGraph, rules []rule) []string {
	var out []string
	pkgs := make([]string, 0, len(graph.imports))
	for pkg := range graph.imports {
		pkgs = append(pkgs, pkg)
	}
	slices.Sort(pkgs)
	for _, r := range rules {
		for _, pkg := range pkgs {
			if !under(pkg, r.from) {
				continue
			}
			for _, dep := range closure(graph, pkg, !r.codeOnly) {
				if !under(dep, "") || under(dep, r.from) && r.from != "" {
					continue
				}
				for _, bad := range r.never {
					if under(dep, bad) {
						out = append(out, r.why+": "+pkg+" depends on "+dep)
					}
				}
			}
		}
	}
	return out
}

// under reports whether pkg is the module's package rel or one below it ("" is the module).
func under(pkg, rel string) bool {
	root := module
	if rel != "" {
		root += "/" + rel
	}
	return pkg == root || strings.HasPrefix(pkg, root+"/")
}

// closure is every package pkg (and its tests, with tests) depends on, directly or not,
// sorted. The imports of the tests of those dependencies are not followed: they are not
// built in.
func closure(graph packageGraph, pkg string, tests bool) []string {
	seen := map[string]bool{}
	stack := slices.Clone(graph.imports[pkg])
	if tests {
		stack = append(stack, graph.testImports[pkg]...)
	}
	for len(stack) > 0 {
		dep := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[dep] || dep == pkg {
			continue
		}
		seen[dep] = true
		stack = append(stack, graph.imports[dep]...)
	}
	deps := make([]string, 0, len(seen))
	for dep := range seen {
		deps = append(deps, dep)
	}
	slices.Sort(deps)
	return deps
}

// moduleGraph asks the go command for every package of the module and what it imports,
// its tests' imports included. Only the module's own packages matter, and those are read
// from the source tree, so it works offline on a fresh checkout.
func moduleGraph(t *testing.T) packageGraph {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goCmd, "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error", "./...")
	// Never fetch anything: a missing third-party module is reported per package, and the
	// module's own imports are known all the same.
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	graph := packageGraph{imports: map[string][]string{}, testImports: map[string][]string{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
			Error                              *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Logf("go list: %s: %s (its imports are still checked)", p.ImportPath, p.Error.Err)
		}
		// The external test package imports its own package: not a dependency to judge.
		xtest := slices.DeleteFunc(p.XTestImports, func(s string) bool { return s == p.ImportPath })
		graph.imports[p.ImportPath] = p.Imports
		graph.testImports[p.ImportPath] = slices.Concat(p.TestImports, xtest)
	}
	return graph
}
