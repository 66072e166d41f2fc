// Package repocheck has no API: its tests hold the repository to the
// rules that keep it readable (docs/architecture.md lists them). The root
// package's files depend in one direction; no function outside a test is
// over 60 lines; the example proxy is at most 400 lines of Go; README.md
// and BENCHMARKS.md are at most 300 lines; and every relative link in the
// Markdown files resolves to a file, and every anchor to a heading.
package repocheck
