package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
)

// writeRequest writes req on bw as [http.Request.Write] does, byte for
// byte, and closes its body. A request as Handler sends them (a body of
// known length, no trailer, no Connection: close, a plain host) is
// written here, which costs half of what Request.Write's general
// machinery does; any other is left to Request.Write.
func writeRequest(bw *bufio.Writer, req *http.Request) (err error) {
	if !plainRequest(req) {
		return req.Write(bw)
	}
	uri := req.URL.RequestURI()
	if strings.ContainsFunc(uri, isCTL) {
		return req.Write(bw) // which refuses it
	}
	if req.Body != nil {
		defer func() {
			if cerr := req.Body.Close(); err == nil {
				err = cerr
			}
		}()
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(requestHost(req))
	bw.WriteString("\r\n")
	writeUserAgent(bw, req.Header)
	if req.ContentLength > 0 || sendsZeroLength(method) {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), req.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	writeFields(bw, req.Header)
	bw.WriteString("\r\n")
	if req.ContentLength == 0 {
		return nil
	}
	return writeBody(bw, req)
}

// plainRequest reports whether writeRequest writes req itself: its body's
// length is known, and it has nothing that Request.Write adds to or
// changes (chunking, a trailer, Connection: close, a client trace, an
// opaque URL, a CONNECT target, a host that is not plain ASCII).
func plainRequest(req *http.Request) bool {
	if req.URL == nil || req.URL.Opaque != "" || req.Method == http.MethodConnect {
		return false
	}
	noBody := req.Body == nil || req.Body == http.NoBody
	knownLength := req.ContentLength > 0 && !noBody || req.ContentLength == 0 && noBody
	return knownLength && len(req.TransferEncoding) == 0 && req.Trailer == nil && !req.Close &&
		plainHost(requestHost(req)) && httptrace.ContextClientTrace(req.Context()) == nil
}

// requestHost is the host Request.Write sends: the request's Host, or else
// its URL's.
func requestHost(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}

// plainHost reports whether Request.Write sends host as it is: letters,
// digits and the punctuation of a name, an address and a port, with no
// IPv6 zone, which Request.Write removes, and nothing to make punycode of.
func plainHost(host string) bool {
	for _, c := range []byte(host) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-:[]_", c) >= 0) {
			return false
		}
	}
	return true
}

// isCTL reports whether r is a control character, which Request.Write
// refuses in a request target.
func isCTL(r rune) bool { return r < ' ' || r == 0x7f }

// sendsZeroLength reports whether Request.Write sends "Content-Length: 0"
// for a request of method without a body.
func sendsZeroLength(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// writeUserAgent writes the first User-Agent of h, or Go's when h has
// none. One that h has but is empty is not written.
func writeUserAgent(bw *bufio.Writer, h http.Header) {
	ua := "Go-http-client/1.1"
	if vs, ok := h["User-Agent"]; ok {
		ua = ""
		if len(vs) > 0 {
			ua = vs[0]
		}
	}
	if ua != "" {
		bw.WriteString("User-Agent: ")
		bw.WriteString(fieldValue(ua))
		bw.WriteString("\r\n")
	}
}

// writeFields writes the fields of h, sorted by name as Request.Write
// sorts them, all but those written before them and those whose name is
// not a token, which Request.Write drops.
func writeFields(bw *bufio.Writer, h http.Header) {
	var buf [32]string // on the stack for up to 32 names
	names := buf[:0]
	for name := range h {
		switch name {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if validToken(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range h[name] {
			bw.WriteString(name)
			bw.WriteString(": ")
			bw.WriteString(fieldValue(v))
			bw.WriteString("\r\n")
		}
	}
}

// newlineToSpace makes each CR and LF a space, as Request.Write does in a
// field value.
var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// fieldValue is v as Request.Write writes it: line breaks made spaces,
// and the spaces and tabs around it trimmed.
func fieldValue(v string) string {
	if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 {
		v = newlineToSpace.Replace(v)
	}
	return trimSpace(v)
}

// writeBody writes req's body, which must hold req.ContentLength bytes,
// no fewer and no more, as Request.Write requires with its error.
func writeBody(bw *bufio.Writer, req *http.Request) error {
	n, err := io.Copy(bw, io.LimitReader(req.Body, req.ContentLength))
	if err != nil {
		return err
	}
	extra, err := io.Copy(io.Discard, req.Body)
	if err != nil {
		return err
	}
	if n += extra; n != req.ContentLength {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", req.ContentLength, n)
	}
	return nil
}
