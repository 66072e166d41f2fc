package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onwardsgo/pool/gateway"
)

// TestCeilingsRelayWhatTheUpstreamSends holds the two ceilings of load.sh
// to the work the proxies they are set beside do: each answer through them,
// a chat completion and a stream, over one kept-alive connection, is the
// upstream's answer, status, body and content type.
func TestCeilingsRelayWhatTheUpstreamSends(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(upstream))
	defer up.Close()
	targets := []string{up.URL, up.URL}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serveRaw(ln, newRawUpstreams(targets))
	defer ln.Close()
	server := httptest.NewServer(newRawUpstreams(targets))
	defer server.Close()

	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for _, body := range []string{`{"model":"m","stream":false}`, `{"model":"m","stream":true}`} {
		want := exchange(t, client, up.URL, body)
		for name, base := range map[string]string{"rawproxy": "http://" + ln.Addr().String(), "serverproxy": server.URL} {
			for range 3 { // the same connection, reused
				if got := exchange(t, client, base, body); got != want {
					t.Errorf("%s, %s:\ngot  %q\nwant %q", name, body, got, want)
				}
			}
		}
	}
}

// exchange sends body to base's chat completions and returns the answer's
// status, content type and body.
func exchange(t *testing.T, client *http.Client, base, body string) string {
	t.Helper()
	resp, err := client.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status + " " + resp.Header.Get("Content-Type") + "\n" + string(b)
}

// TestBareServerServesTheGatewayAsNetHTTPDoes holds the bare server of
// gateway-bareserver to net/http's: the gateway's answers through it, a
// chat completion and a stream, over one kept-alive connection, are those
// through net/http's server.
func TestBareServerServesTheGatewayAsNetHTTPDoes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(upstream))
	defer up.Close()
	upstreams := &gateway.Transport{}
	defer upstreams.CloseIdleConnections()
	gw := gatewayOver([]string{up.URL, up.URL}, &gateway.Handler{Transport: upstreams})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serveBare(ln, gw)
	defer ln.Close()
	server := httptest.NewServer(gw)
	defer server.Close()

	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for _, body := range []string{`{"model":"m","stream":false}`, `{"model":"m","stream":true}`} {
		want := exchange(t, client, server.URL, body)
		if !strings.HasPrefix(want, "200 OK ") {
			t.Fatalf("through net/http's server, %s: %q", body, want)
		}
		for range 3 { // the same connection, reused
			if got := exchange(t, client, "http://"+ln.Addr().String(), body); got != want {
				t.Errorf("%s:\ngot  %q\nwant %q", body, got, want)
			}
		}
	}
}
