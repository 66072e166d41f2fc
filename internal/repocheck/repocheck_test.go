package repocheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onwardsgo/pool/internal/filegraph"
)

// root is the repository's root, from this package's directory.
const root = "../.."

const (
	maxFuncLines    = 60
	maxProxyLines   = 400
	maxEntryLines   = 300 // README.md, BENCHMARKS.md
	exampleProxyDir = "examples/proxy"
)

func TestRootPackageFilesHaveNoCycle(t *testing.T) {
	g, err := filegraph.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Files) < 10 {
		t.Fatalf("loaded %d files of the root package, want all of them: %v", len(g.Files), g.Files)
	}
	for _, c := range g.Cycles() {
		t.Errorf("files use each other: %v (go run ./bench/filegraph -why . names the uses)", c)
	}
}

func TestNoLongFunctions(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, path := range goSources(t) {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			checked++
			start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
			if n := end.Line - start.Line + 1; n > maxFuncLines {
				t.Errorf("%s:%d: %s is %d lines, over %d", rel(path), start.Line, fn.Name.Name, n, maxFuncLines)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("checked %d functions; the walk of the repository missed most of them", checked)
	}
}

func TestExampleProxyIsSmall(t *testing.T) {
	total := 0
	for _, path := range goSources(t) {
		if filepath.ToSlash(filepath.Dir(rel(path))) == exampleProxyDir {
			total += lines(t, path)
		}
	}
	if total == 0 || total > maxProxyLines {
		t.Errorf("%s has %d lines of Go outside its tests, want 1 to %d", exampleProxyDir, total, maxProxyLines)
	}
}

func TestEntryPagesAreShort(t *testing.T) {
	for _, name := range []string{"README.md", "BENCHMARKS.md"} {
		if n := lines(t, filepath.Join(root, name)); n > maxEntryLines {
			t.Errorf("%s is %d lines, over %d: move a topic to docs/", name, n, maxEntryLines)
		}
	}
}

func TestMarkdownLinksResolve(t *testing.T) {
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join(root, "README.md"), filepath.Join(root, "BENCHMARKS.md"))
	for _, page := range pages {
		broken, err := brokenLinks(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range broken {
			t.Error(b)
		}
	}
}

// goSources returns the Go files outside tests of every module in the
// repository, leaving out hidden directories and testdata.
func goSources(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func rel(path string) string {
	r, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return r
}
