package domain_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/einvoice/spaceorders/domain"
)

// Every command names itself as its type is called, and every type that is a command of an
// aggregate has the name: read from the source, so that a new command is checked too.
func TestCommandsNameThemselves(t *testing.T) {
	fs := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	commands, named := map[string]bool{}, map[string]bool{}
	for _, name := range files {
		f, err := parser.ParseFile(fs, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			recv, ok := fd.Recv.List[0].Type.(*ast.Ident)
			if !ok {
				continue
			}
			switch fd.Name.Name {
			case "isOrderCommand", "isSubscriptionCommand":
				commands[recv.Name] = true
			case "CommandName":
				named[recv.Name] = true
				ret, ok := fd.Body.List[0].(*ast.ReturnStmt)
				if !ok || len(ret.Results) != 1 {
					t.Errorf("%s.CommandName does not return a literal", recv.Name)
					continue
				}
				lit, ok := ret.Results[0].(*ast.BasicLit)
				name, err := strconv.Unquote(litValue(lit, ok))
				if err != nil || name != recv.Name {
					t.Errorf("%s.CommandName() is %s, want %q", recv.Name, litValue(lit, ok), recv.Name)
				}
			}
		}
	}
	if len(commands) < 18 {
		t.Fatalf("found %d commands in the source, want all of them: %v", len(commands), slices.Sorted(maps.Keys(commands)))
	}
	if !maps.Equal(commands, named) {
		t.Errorf("commands %v, named %v", slices.Sorted(maps.Keys(commands)), slices.Sorted(maps.Keys(named)))
	}
	// And at run time, through the interfaces the handlers use.
	for _, c := range []domain.Command{domain.ConfirmOrder{}, domain.OpenSubscription{}, domain.RecordEmailSent{}} {
		if c.CommandName() == "" {
			t.Errorf("%#v has no name", c)
		}
	}
}

func litValue(lit *ast.BasicLit, ok bool) string {
	if !ok || lit.Kind != token.STRING {
		return "<not a string literal>"
	}
	return lit.Value
}
