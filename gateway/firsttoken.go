package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/onwardsgo/pool"
)

// maxLeadBytes bounds what the gateway reads of a stream, before it sends
// anything to the client, while it waits for the first data frame.
const maxLeadBytes = 64 << 10

// errFirstTokenCause marks an upstream call cancelled by its first-token
// deadline.
var errFirstTokenCause = errors.New("first-token deadline")

// attempt is one try of one provider, with what the load-aware controls
// of onwards 2.0 need of it.
type attempt struct {
	sel      pool.Selection
	obs      *pool.FirstTokenObservation // the AIMD controller's; nil: none
	deadline time.Duration               // the first-token deadline; 0: none
	start    time.Time

	firstToken time.Duration // to the first data frame, when one was seen
	timedOut   bool          // the first-token deadline expired
}

// isStream reports whether a request body asks for a stream:
// "stream": true.
func isStream(body []byte, valid bool) bool {
	if !valid {
		return false
	}
	var buf [2]span
	streams, isObject := memberValues(body, "stream", buf[:0])
	return isObject && len(streams) > 0 && string(lastValue(body, streams)) == "true"
}

// firstTokenDeadline returns the first-token deadline of an attempt: the
// pool's, for a realtime stream in a pool of more than one provider that
// falls back, never on the walk's last attempt.
func firstTokenDeadline(pl *pool.ProviderPool, req *request, last bool) time.Duration {
	if !req.stream || req.dispatched || last || pl.Len() < 2 || !pl.FallbackEnabled() {
		return 0
	}
	return pl.FirstTokenTimeout()
}

// leadFrame reads resp's body up to its first data frame (a "data:" line
// other than [DONE]; comments, which keep a stream alive, do not count),
// or its end, or maxLeadBytes, and puts what it read back in front of the
// body. It reports whether it saw the frame, and the body's read error.
func leadFrame(resp *http.Response) (bool, error) {
	body := resp.Body
	buf := make([]byte, 0, 4096)
	var err error
	found := false
	for !found && err == nil && len(buf) < maxLeadBytes {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		var n int
		n, err = body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		found = hasDataFrame(buf)
	}
	resp.Body = readCloser{&prefixed{buf, body}, body}
	if err == io.EOF {
		err = nil
	}
	return found, err
}

// prefixed reads head, then rest. Once head is read, it lets go of it.
type prefixed struct {
	head []byte
	rest io.Reader
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.head) == 0 {
		return p.rest.Read(b)
	}
	n := copy(b, p.head)
	p.head = p.head[n:]
	if len(p.head) == 0 {
		p.head = nil
	}
	return n, nil
}

func (p *prefixed) waitReadable() {
	if len(p.head) == 0 {
		waitReadable(p.rest)
	}
}

// hasDataFrame reports whether the complete lines of b hold a data line
// that is not the [DONE] sentinel.
func hasDataFrame(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false
		}
		line := bytes.TrimRight(b[:i], "\r")
		if data, ok := dataField(line); ok && string(bytes.TrimSpace(data)) != "[DONE]" {
			return true
		}
		b = b[i+1:]
	}
}
