package pool

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseConfig checks that ParseConfig never panics, that whatever it
// accepts also builds a registry, and that an accepted config survives a
// round trip through JSON unchanged. CI runs it for a bounded time:
// go test -run '^$' -fuzz FuzzParseConfig -fuzztime 20s .
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, doc := range []string{
		`{"targets": {"a": {"url": "https://a.example.com"}}}`,
		`{"targets": {"a": [{"url": "https://a.example.com", "weight": 2}, {"url": "http://b:8080/v1"}]}}`,
		`{"targets": {"a": {"providers": [{"url": "https://a.example.com"}], "fallback": {"enabled": true, "on_status": [5]}}}}`,
		`{"targets": {"a": {"url": "https://a.example.com", "routing_rules": [{"match_labels": {}, "action": {"type": "deny"}}]}}}`,
		`{"targets": {"a": {"url": "ftp://a"}}}`,
		`{"targets": {"a": null}}`,
		`{"targets": {"a": {}}}`,
		`{"targets": []}`,
		`null`,
		`{"auth": {"key_definitions": {"x": {"key": "k", "rate_limit": {"requests_per_second": 1e308}}}}, "targets": {"a": {"url": "https://a"}}}`,
	} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		if _, err := NewRegistry(cfg); err != nil {
			t.Fatalf("ParseConfig accepted a config that NewRegistry refuses: %v", err)
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("the round trip of an accepted config fails: %v\n%s", err, out)
		}
		out2, err := json.Marshal(again)
		if err != nil {
			t.Fatalf("marshal again: %v", err)
		}
		if string(out) != string(out2) {
			t.Fatalf("the round trip changed the config:\n%s\n%s", out, out2)
		}
	})
}
