package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCopyResponse sends arbitrary upstream answers through CopyResponse,
// in pieces of arbitrary size, under every combination of options, and
// holds each outcome to what the gateway promises a client:
//
//   - an answer it does not re-encode goes out byte for byte, status and all;
//   - a 2xx answer it re-encodes goes out as JSON naming the client's
//     model, or as events whose data is each JSON or [DONE], or else is
//     refused with ErrMalformedResponse;
//   - an error answer it standardizes goes out as an error object of its
//     own, with the masked status;
//
// and nothing panics.
func FuzzCopyResponse(f *testing.F) {
	completionBody := completion("upstream-model", "Hi")
	stream := chunk("upstream-model", "a") + chunk("upstream-model", "b") + "data: [DONE]\n\n"
	for _, seed := range []struct {
		body   string
		status uint16
		flags  uint8
	}{
		{completionBody, 0, 0},
		{completionBody, 0, flagSanitize},
		{completionBody, 0, flagStrict | pathBits(1)},
		{stream, 0, flagStream | flagSanitize},
		{stream, 0, flagStream | flagStrict},
		{": comment\r\nevent: x\r\ndata: {\"choices\":[]}\r\ndata: {}\r\n\r\ndata: [DONE]", 0, flagStream | flagSanitize},
		{`data: {"error":{"message":"quota at 10.0.0.9","code":"rate_limit"}}` + "\n\n", 0, flagStream | flagStrict},
		{`{"data":[{"embedding":[0.5],"index":0}],"model":"m"}`, 0, flagStrict | pathBits(1)},
		{`{"id":"resp_1","output":[],"model":"m"}`, 0, flagStrict | pathBits(2)},
		{`{"error":{"message":"bad key sk-up"}}`, 201, flagStrict},
		{`{"error":{"message":"overloaded"}}`, 303, flagSanitize},
		{`{"choices": "nope"}`, 0, flagSanitize},
		{"", 0, flagSanitize | flagStream},
	} {
		f.Add([]byte(seed.body), seed.status, seed.flags, uint8(7))
	}
	f.Fuzz(func(t *testing.T, body []byte, code uint16, flags, piece uint8) {
		status := 200 + int(code)%400 // 200-599
		if !bodyAllowed(status) {
			body = nil // as the transport reads such an answer, whatever follows it
		}
		opts := ResponseOptions{
			Path:     fuzzPaths[flags>>5%uint8(len(fuzzPaths))],
			Model:    "alias",
			Sanitize: flags&flagSanitize != 0,
			Strict:   flags&flagStrict != 0,
			Trusted:  flags&flagTrusted != 0,
		}
		contentType := "application/json"
		if flags&flagStream != 0 {
			contentType = "text/event-stream"
		}
		resp := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {contentType}},
			Body: io.NopCloser(&pieces{b: body, n: 1 + int(piece)%64})}
		w := httptest.NewRecorder()
		err := CopyResponse(w, resp, opts)
		if err != nil && !errors.Is(err, ErrMalformedResponse) {
			t.Fatalf("an error that is not ErrMalformedResponse from a body that reads whole: %v", err)
		}
		out := w.Body.Bytes()
		switch ok2xx := status <= 299; {
		case ok2xx && !sanitizes(opts.Path, opts.Sanitize, opts.Strict),
			!ok2xx && !(opts.Strict && !opts.Trusted) && !(opts.Sanitize && !opts.Strict && sanitizes(opts.Path, true, false)):
			if err != nil || w.Code != status || !bytes.Equal(out, body) {
				t.Fatalf("passed on as %d %q (err %v); the upstream sent %d %q", w.Code, out, err, status, body)
			}
		case !ok2xx:
			want := status
			if opts.Strict {
				want = maskStatus(status)
			}
			checkOwnError(t, w, want)
		case errors.Is(err, ErrMalformedResponse) && contentType == "application/json":
			checkOwnError(t, w, http.StatusBadGateway)
		case contentType == "application/json":
			if w.Code != status {
				t.Fatalf("re-encoded with status %d; the upstream sent %d", w.Code, status)
			}
			var v struct{ Model string }
			if json.Unmarshal(out, &v) != nil || v.Model != "alias" {
				t.Fatalf("re-encoded as %q: not JSON naming the client's model", out)
			}
		default:
			checkEvents(t, out, err != nil)
		}
	})
}

// The bits of FuzzCopyResponse's flags; the top three pick the path.
const (
	flagStream   = 1 << 0
	flagSanitize = 1 << 1
	flagStrict   = 1 << 2
	flagTrusted  = 1 << 3
)

func pathBits(i uint8) uint8 { return i << 5 }

var fuzzPaths = []string{pathChat, pathEmbeddings, pathResponses, "/v1/completions", pathChat + "/"}

// pieces reads b at most n bytes at a time.
type pieces struct {
	b []byte
	n int
}

func (p *pieces) Read(out []byte) (int, error) {
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	k := copy(out[:min(len(out), p.n)], p.b)
	p.b = p.b[k:]
	return k, nil
}

// bodyAllowed reports whether an answer of status may have a body.
func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// checkOwnError checks that w holds an error answer of the gateway's own:
// status, and a JSON error object with a message.
func checkOwnError(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	var e struct{ Error struct{ Message string } }
	if w.Code == status && !bodyAllowed(status) && w.Body.Len() == 0 {
		return // the status alone: the recorder, as a server, refuses a body
	}
	if w.Code != status || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error.Message == "" {
		t.Fatalf("got %d %q; want an error of the gateway's own with status %d", w.Code, w.Body.Bytes(), status)
	}
}

// checkEvents checks a re-encoded stream: events of one data line each,
// whose data is [DONE] or JSON, a chunk naming the client's model; the
// last an error event when the stream ended on a malformed one.
func checkEvents(t *testing.T, out []byte, malformed bool) {
	t.Helper()
	events := strings.SplitAfter(string(out), "\n\n")
	if last := events[len(events)-1]; last != "" {
		t.Fatalf("the stream ends inside an event: %q", last)
	}
	events = events[:len(events)-1]
	for i, ev := range events {
		data, ok := strings.CutPrefix(strings.TrimSuffix(ev, "\n\n"), "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("event %d is not one data line: %q", i, ev)
		}
		if data == "[DONE]" {
			continue
		}
		var v struct {
			Model   string
			Choices json.RawMessage
			Error   json.RawMessage
		}
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatalf("event %d is not JSON: %q", i, data)
		}
		if v.Error == nil && v.Model != "alias" {
			t.Fatalf("event %d names model %q, not the client's: %q", i, v.Model, data)
		}
	}
	if malformed && (len(events) == 0 || !strings.HasPrefix(events[len(events)-1], `data: {"error":`)) {
		t.Fatalf("a stream cut for a malformed event does not end with an error event: %q", out)
	}
}
