package repocheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The checks are tested on pages of their own, so that a check that
// passes the repository is known to be able to fail.

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		" Load balancing": "load-balancing",
		" `gateway.Transport`: upstream calls without net/http's connection goroutines": "gatewaytransport-upstream-calls-without-nethttps-connection-goroutines",
		" Shared limits: many replicas, one set of limits (poolredis)":                  "shared-limits-many-replicas-one-set-of-limits-poolredis",
		" Handler.Transport, a noisy spell (2026-11-27, eighth session)":                "handlertransport-a-noisy-spell-2026-11-27-eighth-session",
		" snake_case and UPPER": "snake_case-and-upper",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

func TestAnchorsNumberRepeats(t *testing.T) {
	got := anchors("# A\n## Goals\n```\n# not a heading\n```\n### Goals\n")
	for _, want := range []string{"a", "goals", "goals-1"} {
		if !got[want] {
			t.Errorf("anchors lack %q: %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Errorf("a line in a code block counted as a heading: %v", got)
	}
}

func TestLinksSkipCode(t *testing.T) {
	got := links("[a](a.md) `[b](b.md)` ![c](c.png \"title\")\n```\n[d](d.md)\n```\n[e](https://x/y)")
	want := []string{"a.md", "c.png", "https://x/y"}
	if !slices.Equal(got, want) {
		t.Errorf("links = %q, want %q", got, want)
	}
}

func TestBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/b.md", "# B\n## Has a part\n")
	write("README.md", strings.Join([]string{
		"# Top",
		"[ok](docs/b.md) [ok](docs/b.md#has-a-part) [ok](#top) [ok](docs) [web](https://example.com/x#y)",
		"[gone](docs/c.md) [no part](docs/b.md#no-part) [no top](#bottom)",
	}, "\n"))
	got, err := brokenLinks(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"docs/c.md", "docs/b.md#no-part", "#bottom"}
	if len(got) != len(want) {
		t.Fatalf("broken links = %q, want the %d of %q", got, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(got[i], `"`+w+`"`) {
			t.Errorf("broken link %d = %q, want it to name %q", i, got[i], w)
		}
	}
}
