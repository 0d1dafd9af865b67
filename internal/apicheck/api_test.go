package apicheck

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// libraries are the packages a user imports.
var libraries = []string{"mailbox", "actor", "procnode"}

// parse reads a library package's non-test files.
func parse(t *testing.T, dir string) (*token.FileSet, []*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(filepath.Join("..", "..", dir))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join("..", "..", dir, name), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return fset, files
}

// TestEverythingExportedIsDocumented: every exported declaration of the
// library packages has a doc comment, and so has every exported field of an
// exported struct and every constant of an exported group (a group's
// comment does not document its members).
func TestEverythingExportedIsDocumented(t *testing.T) {
	for _, dir := range libraries {
		fset, files := parse(t, dir)
		for _, f := range files {
			for _, decl := range f.Decls {
				switch d := decl.(type) {
				case *ast.FuncDecl:
					if d.Name.IsExported() && (d.Recv == nil || exportedRecv(d.Recv)) && d.Doc == nil {
						t.Errorf("%s: func %s has no doc comment", fset.Position(d.Pos()), d.Name.Name)
					}
				case *ast.GenDecl:
					for _, spec := range d.Specs {
						checkSpec(t, fset, d, spec)
					}
				}
			}
		}
	}
}

func exportedRecv(fl *ast.FieldList) bool {
	typ := fl.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	if ix, ok := typ.(*ast.IndexExpr); ok {
		typ = ix.X
	}
	id, ok := typ.(*ast.Ident)
	return ok && id.IsExported()
}

func checkSpec(t *testing.T, fset *token.FileSet, d *ast.GenDecl, spec ast.Spec) {
	t.Helper()
	grouped := d.Lparen.IsValid()
	switch s := spec.(type) {
	case *ast.TypeSpec:
		if !s.Name.IsExported() {
			return
		}
		if s.Doc == nil && (grouped || d.Doc == nil) {
			t.Errorf("%s: type %s has no doc comment", fset.Position(s.Pos()), s.Name.Name)
		}
		if st, ok := s.Type.(*ast.StructType); ok {
			for _, f := range st.Fields.List {
				for _, name := range f.Names {
					if name.IsExported() && f.Doc == nil && f.Comment == nil {
						t.Errorf("%s: field %s.%s has no comment", fset.Position(name.Pos()), s.Name.Name, name.Name)
					}
				}
			}
		}
	case *ast.ValueSpec:
		for _, name := range s.Names {
			if !name.IsExported() {
				continue
			}
			documented := s.Doc != nil || s.Comment != nil || (!grouped && d.Doc != nil)
			if !documented {
				t.Errorf("%s: %s %s has no comment", fset.Position(name.Pos()), d.Tok, name.Name)
			}
		}
	}
}

// TestProtocolIsNotPublic: the messages and options of the protocol between
// a parent and its children are not part of the API (a user never needs
// them, and package procnode's own uses must stay its own).
func TestProtocolIsNotPublic(t *testing.T) {
	internal := map[string][]string{
		"actor":    {"SpawnRequest", "SpawnResponse", "SpawnCode", "SpawnOK", "ActivatorPID", "WithIncarnation"},
		"procnode": {"ExitNotice", "Boot", "Directive", "RootFailed", "RootRestarted", "LogRecord"},
	}
	for dir, names := range internal {
		fset, files := parse(t, dir)
		pkg, err := doc.NewFromFiles(fset, files, "github.com/procactor/procactor/"+dir)
		if err != nil {
			t.Fatal(err)
		}
		exported := map[string]bool{}
		for _, ty := range pkg.Types {
			exported[ty.Name] = true
			for _, f := range ty.Funcs {
				exported[f.Name] = true
			}
			for _, v := range append(ty.Consts, ty.Vars...) {
				for _, n := range v.Names {
					exported[n] = true
				}
			}
		}
		for _, f := range pkg.Funcs {
			exported[f.Name] = true
		}
		for _, v := range append(pkg.Consts, pkg.Vars...) {
			for _, n := range v.Names {
				exported[n] = true
			}
		}
		for _, name := range names {
			if exported[name] {
				t.Errorf("%s.%s is exported; it belongs to the protocol", dir, name)
			}
		}
	}
}
