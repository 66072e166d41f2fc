// Command filegraph draws which files of a Go package use which: an edge
// a.go -> b.go when code in a.go names something (a type, function,
// constant, variable, method or field) declared in b.go. Test files are
// left out. It prints the edges, the files by level (a file's level is one
// more than the highest level of the files it uses, so level 0 uses no
// other file), and every cycle, as the strongly connected components of
// more than one file. It exits 1 if there is a cycle.
//
//	go run ./bench/filegraph          # the root package
//	go run ./bench/filegraph ./gateway
//	go run ./bench/filegraph -why .   # what each edge stands for
//	go run ./bench/filegraph -dot . | dot -Tsvg >files.svg
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/onwardsgo/pool/internal/filegraph"
)

func main() {
	dot := flag.Bool("dot", false, "print the graph in Graphviz's dot language")
	why := flag.Bool("why", false, "print, for each edge, the names it stands for")
	flag.Parse()
	dir := "."
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	g, err := filegraph.Load(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "filegraph:", err)
		os.Exit(2)
	}
	if *dot {
		g.WriteDot(os.Stdout)
	} else {
		report(os.Stdout, g, *why)
	}
	if len(g.Cycles()) > 0 {
		os.Exit(1)
	}
}

func report(w io.Writer, g *filegraph.Graph, why bool) {
	fmt.Fprintln(w, "# edges (file -> files it uses)")
	for _, f := range g.Files {
		if len(g.Uses[f]) == 0 {
			continue
		}
		if !why {
			fmt.Fprintf(w, "%s -> %v\n", f, g.Uses[f])
			continue
		}
		for _, to := range g.Uses[f] {
			e := f + " -> " + to
			fmt.Fprintf(w, "%s: %v\n", e, g.Why[e])
		}
	}
	cycles := g.Cycles()
	if len(cycles) > 0 {
		fmt.Fprintln(w, "\n# cycles")
		for _, c := range cycles {
			fmt.Fprintln(w, c)
		}
		return
	}
	fmt.Fprintln(w, "\n# levels (0 uses no other file)")
	for i, files := range g.Levels() {
		fmt.Fprintf(w, "%2d %v\n", i, files)
	}
}
