package status

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onwardsgo/pool"
)

func TestHandlerShowsEveryAliasAndNoKey(t *testing.T) {
	cfg, err := pool.ParseConfig([]byte(`{"targets": {
		"chat": {"strategy": "priority", "outlier_detection": {"consecutive_failures": 1},
		         "providers": [{"url": "https://user:pw@a.example.com/v1?key=sk-q", "onwards_key": "sk-upstream"},
		                       {"url": "https://b.example.com/v1", "concurrency_limit": {"max_concurrent_requests": 4}}]},
		"embed": {"url": "https://c.example.com/v1"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := reg.Pool("chat")
	sel, _ := p.Select()
	sel.Report(pool.Failure) // ejects a.example.com, the first by priority
	sel.Close()
	w := httptest.NewRecorder()
	Handler(reg).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/status", nil))
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, content type %q", w.Code, w.Header().Get("Content-Type"))
	}
	for _, want := range []string{`id="alias-chat"`, `id="alias-embed"`, `class="state ejected"`, "0 / 4", "https://a.example.com/v1/"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, secret := range []string{"sk-", "pw@", "user"} {
		if strings.Contains(body, secret) {
			t.Errorf("the page shows %q", secret)
		}
	}
}
