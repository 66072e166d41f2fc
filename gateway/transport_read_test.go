package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readOutcome is all that a reader of a response gives its caller: the
// response's fields, its body and how the body ended, and what is left
// on the connection after it.
type readOutcome struct {
	Err                          string
	Status                       string
	StatusCode                   int
	Proto                        string
	ProtoMajor, ProtoMinor       int
	Header, Trailer              http.Header
	ContentLength                int64
	TransferEncoding             []string
	Close, Uncompressed, SameReq bool
	NoBody                       bool
	Body                         string
	BodyErr                      string
	Rest                         string
}

// readWith reads a response to a request of method from data with read,
// the whole of it if whole, else a byte a read, as a slow upstream sends.
func readWith(read func(*bufio.Reader, *http.Request) (*http.Response, error), data []byte, method string, whole bool) readOutcome {
	var src io.Reader = bytes.NewReader(data)
	if !whole {
		src = iotest.OneByteReader(src)
	}
	br := bufio.NewReaderSize(src, 4096)
	req, _ := http.NewRequest(method, "http://up.test/v1", nil)
	resp, err := read(br, req)
	if err != nil {
		return readOutcome{Err: err.Error()}
	}
	body, bodyErr := io.ReadAll(resp.Body)
	rest, _ := io.ReadAll(br)
	o := readOutcome{
		Status: resp.Status, StatusCode: resp.StatusCode, Proto: resp.Proto,
		ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
		Header: resp.Header, Trailer: resp.Trailer, ContentLength: resp.ContentLength,
		TransferEncoding: resp.TransferEncoding, Close: resp.Close, Uncompressed: resp.Uncompressed,
		SameReq: resp.Request == req, NoBody: resp.Body == http.NoBody,
		Body: string(body), Rest: string(rest),
	}
	if bodyErr != nil {
		o.BodyErr = bodyErr.Error()
	}
	return o
}

// assertReadsAsReadResponse holds readResponse to ReadResponse's outcome
// for data, read whole and a byte at a time, and returns whether
// readResponse parsed it itself.
func assertReadsAsReadResponse(t *testing.T, data []byte, method string) (plain bool) {
	t.Helper()
	for _, whole := range []bool{true, false} {
		want := readWith(http.ReadResponse, data, method, whole)
		got := readWith(readResponse, data, method, whole)
		require.Equal(t, want, got, "read whole: %v", whole)
	}
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 || method == http.MethodHead {
		return false
	}
	_, plain = parsePlainResponse(data[:end+2])
	return plain
}

func TestReadResponseAsReadResponse(t *testing.T) {
	for _, c := range []struct {
		name   string
		data   string
		method string
		plain  bool
	}{
		{"net/http's answer", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 07 Dec 2026 02:00:00 GMT\r\nContent-Length: 2\r\n\r\n{}", "POST", true},
		{"uvicorn's answer", "HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 02:00:00 GMT\r\nserver: uvicorn\r\ncontent-length: 2\r\ncontent-type: application/json\r\nx-request-id: abc\r\n\r\n{}", "POST", true},
		{"and the next answer after it", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", "GET", true},
		{"error status", "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 4\r\n\r\nslow", "POST", true},
		{"no reason phrase", "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", "POST", true},
		{"empty reason phrase", "HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n", "POST", true},
		{"status past 599", "HTTP/1.1 999 Odd\r\nContent-Length: 1\r\n\r\nx", "POST", true},
		{"padded and repeated fields", "HTTP/1.1 200 OK\r\nX-A:  one \t\r\nx-a: two\r\nX-B:\r\nX-C:\t\tc\r\nContent-Length: 002\r\n\r\nok", "POST", true},
		{"obs-text in a value", "HTTP/1.1 200 OK\r\nX-A: caf\xc3\xa9 \xff\r\nContent-Length: 0\r\n\r\n", "POST", true},
		{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "POST", true},
		{"huge length", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\nx", "POST", true},
		{"length past int64", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\nx", "POST", false},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", "POST", false},
		{"empty length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nok", "POST", false},
		{"two equal lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk", "POST", false},
		{"no length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the close", "POST", false},
		{"no fields", "HTTP/1.1 200 OK\r\n\r\nto the close", "POST", false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n", "POST", false},
		{"chunked and a length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "POST", false},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"connection keep-alive", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"trailer without chunks", "HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n", "HEAD", false},
		{"204", "HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\nok", "GET", false},
		{"100 then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"HTTP/2 line", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"two spaces", "HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"short code", "HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"long code", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"signed code", "HTTP/1.1 +20 OK\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"tab after code", "HTTP/1.1 200\tOK\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"control in reason", "HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"bare LF lines", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok\r\n\r\n", "POST", false},
		{"bare LF in a field", "HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"bare CR in a value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"folded field", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"no colon", "HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"empty name", "HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"DEL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x7f\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x00\r\nContent-Length: 2\r\n\r\nok", "POST", false},
		{"header not yet whole", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "POST", false},
		{"nothing", "", "POST", false},
		{"garbage", "\x16\x03\x01\x00", "POST", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			plain := assertReadsAsReadResponse(t, []byte(c.data), c.method)
			assert.Equal(t, c.plain, plain, "parsed by readResponse itself")
		})
	}
}

// A read that fails before the answer's first byte fails as ReadResponse
// does, with the connection's error.
func TestReadResponseReadError(t *testing.T) {
	broken := errors.New("connection reset")
	req, _ := http.NewRequest(http.MethodPost, "http://up.test/v1", nil)
	_, err := readResponse(bufio.NewReader(iotest.ErrReader(broken)), req)
	assert.ErrorIs(t, err, broken)
}

// A plain answer's body gives its last bytes with io.EOF, so that the
// Transport takes its connection back without waiting for one more read.
func TestLengthBodyEndsWithItsLastBytes(t *testing.T) {
	body := &lengthBody{br: bufio.NewReader(bytes.NewReader([]byte("okHTTP/1.1"))), n: 2}
	p := make([]byte, 64)
	n, err := body.Read(p)
	assert.Equal(t, 2, n)
	assert.Equal(t, io.EOF, err)
	n, err = body.Read(p)
	assert.Equal(t, 0, n)
	assert.Equal(t, io.EOF, err)
}

// FuzzReadResponse holds readResponse to ReadResponse's outcome for any
// bytes an upstream may answer with, read whole and a byte at a time.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nx-a: \xff b \r\nX-A: c\r\ncontent-length: 3\r\n\r\nokHTTP"), false)
	f.Add([]byte("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"), true)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := http.MethodPost
		if head {
			method = http.MethodHead
		}
		assertReadsAsReadResponse(t, data, method)
	})
}

// An answer as net/http's server writes a JSON body (Content-Type,
// Date, Content-Length) is parsed by readResponse itself: were it to
// fall back, Transport would lose the saving without a test failing.
func TestNetHTTPAnswersArePlain(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "r1")
		io.WriteString(w, `{"object":"chat.completion"}`)
	}))
	defer up.Close()
	c, err := net.Dial("tcp", up.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: up.test\r\nContent-Length: 0\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		line, err := br.ReadSlice('\n')
		require.NoError(t, err)
		head = append(head, line...)
	}
	resp, plain := parsePlainResponse(head[:len(head)-2])
	require.True(t, plain, "%q", head)
	assert.Equal(t, int64(len(`{"object":"chat.completion"}`)), resp.ContentLength)
	assert.Equal(t, "r1", resp.Header.Get("X-Request-Id"))
}
