// Package filegraph draws which files of a Go package use which, for
// bench/filegraph and for the tests that hold the root package to no
// cycle between its files.
package filegraph

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"path/filepath"
	"sort"
)

// Graph is the use relation between the non-test files of one package.
type Graph struct {
	Files []string            // base names, sorted
	Uses  map[string][]string // file -> the other files it uses, sorted
	// Why names, for each edge "from -> to", what from uses of to, sorted.
	Why map[string][]string
}

// Load parses and type-checks the non-test Go files of the package in dir
// and returns the files' use graph.
func Load(dir string) (*Graph, error) {
	bp, err := build.ImportDir(dir, 0)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range bp.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	pkg, err := conf.Check(dir, fset, files, info)
	if err != nil {
		return nil, err
	}
	return graphOf(fset, pkg, files, info), nil
}

func graphOf(fset *token.FileSet, pkg *types.Package, files []*ast.File, info *types.Info) *Graph {
	g := &Graph{Uses: map[string][]string{}, Why: map[string][]string{}}
	edges := map[string]map[string]bool{}
	why := map[string]map[string]bool{}
	fileOf := func(p token.Pos) string { return filepath.Base(fset.Position(p).Filename) }
	for _, f := range files {
		from := fileOf(f.Pos())
		g.Files = append(g.Files, from)
		edges[from] = map[string]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			id, ok := n.(*ast.Ident)
			if !ok {
				return true
			}
			obj := info.Uses[id]
			if obj == nil || obj.Pkg() != pkg || !obj.Pos().IsValid() {
				return true
			}
			if !declaredAtTop(obj, pkg) {
				return true
			}
			if to := fileOf(obj.Pos()); to != from {
				edges[from][to] = true
				e := from + " -> " + to
				if why[e] == nil {
					why[e] = map[string]bool{}
				}
				why[e][obj.Name()] = true
			}
			return true
		})
	}
	sort.Strings(g.Files)
	for e, names := range why {
		for n := range names {
			g.Why[e] = append(g.Why[e], n)
		}
		sort.Strings(g.Why[e])
	}
	for from, tos := range edges {
		for to := range tos {
			g.Uses[from] = append(g.Uses[from], to)
		}
		sort.Strings(g.Uses[from])
	}
	return g
}

// declaredAtTop reports whether obj is a package-level name, or a method
// or field, whose declaration belongs to a file as a whole (not a local).
func declaredAtTop(obj types.Object, pkg *types.Package) bool {
	if obj.Parent() == pkg.Scope() {
		return true
	}
	switch o := obj.(type) {
	case *types.Func:
		return o.Type().(*types.Signature).Recv() != nil
	case *types.Var:
		return o.IsField()
	}
	return false
}

// Cycles returns the strongly connected components of more than one file,
// each sorted, in the order of their first file.
func (g *Graph) Cycles() [][]string {
	index, low := map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var out [][]string
	var visit func(v string)
	visit = func(v string) {
		index[v], low[v] = len(index), len(index)
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range g.Uses[v] {
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var comp []string
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			comp = append(comp, w)
			if w == v {
				break
			}
		}
		if len(comp) > 1 {
			sort.Strings(comp)
			out = append(out, comp)
		}
	}
	for _, f := range g.Files {
		if _, seen := index[f]; !seen {
			visit(f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// Levels groups the files by level: level 0 uses no other file, level n
// uses files of levels below n only. It must be called on a graph with no
// cycle.
func (g *Graph) Levels() [][]string {
	level := map[string]int{}
	var depth func(f string) int
	depth = func(f string) int {
		if l, ok := level[f]; ok {
			return l
		}
		level[f] = 0
		l := 0
		for _, to := range g.Uses[f] {
			l = max(l, depth(to)+1)
		}
		level[f] = l
		return l
	}
	var out [][]string
	for _, f := range g.Files {
		l := depth(f)
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], f)
	}
	return out
}

// WriteDot writes the graph in Graphviz's dot language.
func (g *Graph) WriteDot(w io.Writer) {
	fmt.Fprintln(w, "digraph files {\n\trankdir=BT;")
	for _, f := range g.Files {
		for _, to := range g.Uses[f] {
			fmt.Fprintf(w, "\t%q -> %q;\n", f, to)
		}
	}
	fmt.Fprintln(w, "}")
}
