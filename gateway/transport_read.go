package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// readResponse reads the response to req from br as [http.ReadResponse]
// does, field for field. A plain one (an HTTP/1.1 answer whose header
// arrived whole in the buffer, framed by one Content-Length, with no
// Connection, Transfer-Encoding, Trailer or Pragma field and nothing
// ReadResponse would refuse or change) is parsed here, with a string for
// the whole header rather than one per value; any other is left to
// ReadResponse, which reads it from the same place.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if _, err := br.Peek(1); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // as ReadResponse says it
		}
		return nil, err
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 || req.Method == http.MethodHead {
		return http.ReadResponse(br, req)
	}
	resp, ok := parsePlainResponse(buf[:end+2])
	if !ok {
		return http.ReadResponse(br, req)
	}
	br.Discard(end + 4)
	resp.Request = req
	resp.Body = http.NoBody
	if resp.ContentLength > 0 {
		resp.Body = &lengthBody{br: br, n: resp.ContentLength}
	}
	return resp, nil
}

// parsePlainResponse parses head, a response's status line and header
// fields, each ending in CRLF, when it is plain as readResponse says; it
// reports false, having changed nothing, when it is not.
func parsePlainResponse(head []byte) (*http.Response, bool) {
	line, fields, _ := bytes.Cut(head, []byte("\r\n"))
	code, ok := plainStatus(line)
	if !ok {
		return nil, false
	}
	s := string(head) // the status and every key and value are slices of it
	resp := &http.Response{
		Status:     s[len("HTTP/1.1 "):len(line)],
		StatusCode: code,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
	}
	resp.Header, ok = plainFields(s[len(line)+2:], bytes.Count(fields, []byte("\n")))
	if !ok {
		return nil, false
	}
	resp.ContentLength, ok = plainLength(resp.Header)
	return resp, ok
}

// plainStatus returns the status code of an HTTP/1.1 status line whose
// answer has a body (2xx but 204, and 3xx to 5xx but 304, or beyond) and
// whose reason phrase has no control character.
func plainStatus(line []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1.1 "))
	if !ok || len(rest) < 3 || len(rest) > 3 && rest[3] != ' ' || bytes.ContainsFunc(rest, isCTL) {
		return 0, false
	}
	code := 0
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// plainFields parses the n lines of s, each "Name: value" and CRLF, into
// a header as textproto's ReadMIMEHeader does: names made canonical,
// values trimmed of spaces and tabs. It reports false for a line that
// ReadMIMEHeader would refuse or read otherwise (a folded line, a name
// that is not a token, a value with a control character, a bare LF), and
// for a field that plainLength's framing does not allow.
func plainFields(s string, n int) (http.Header, bool) {
	h := make(http.Header, n)
	values := make([]string, n) // cut up into each name's first value
	for s != "" {
		line, rest, _ := strings.Cut(s, "\r\n")
		s = rest
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validToken(name) || !validValue(value) {
			return nil, false
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		value = trimSpace(value)
		vs := h[name]
		switch {
		case !plainField(name):
			return nil, false
		case vs == nil:
			vs, values = values[:1:1], values[1:]
			vs[0] = value
		case name == "Content-Length":
			return nil, false // ReadResponse refuses two, or makes them one
		default:
			vs = append(vs, value)
		}
		h[name] = vs
	}
	return h, true
}

// plainField reports whether a field of the canonical name leaves a
// response plain: not one that frames the body otherwise than by its
// length (Transfer-Encoding, Trailer), closes the connection
// (Connection), or that ReadResponse changes the header for (Pragma).
func plainField(name string) bool {
	switch name {
	case "Connection", "Transfer-Encoding", "Trailer", "Pragma":
		return false
	}
	return true
}

// validValue reports whether v is a field value that ReadMIMEHeader
// takes and Request.Write sends as it is: no control character but tab.
// Bytes past ASCII (obs-text) are taken.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// trimSpace is v without the spaces and tabs around it.
func trimSpace(v string) string {
	for v != "" && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// plainLength returns the length that h's one Content-Length gives the
// body, and false when h has none or one that ReadResponse refuses.
func plainLength(h http.Header) (int64, bool) {
	vs := h["Content-Length"]
	if len(vs) != 1 {
		return 0, false
	}
	n, err := strconv.ParseUint(vs[0], 10, 63)
	return int64(n), err == nil
}

// lengthBody is a body of n bytes more, read from br, as ReadResponse's
// body of a known length reads: its last bytes come with io.EOF, and an
// end before them is io.ErrUnexpectedEOF.
type lengthBody struct {
	br *bufio.Reader
	n  int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	switch {
	case b.n == 0:
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// Close does nothing: the Transport's body around it closes the
// connection.
func (b *lengthBody) Close() error { return nil }
