package main

// The third ceiling of bench/load.sh, gateway-bareserver: gateway.Handler,
// over gateway.Transport, served by a bare HTTP/1.1 loop instead of
// net/http's server. It answers whether the gateway could come near nginx
// if net/http's server cost nothing beyond parsing each request
// (http.ReadRequest, as that server does): no goroutine beside the
// connection's, no context cancelled when the client leaves, no timeouts,
// no limits, no HTTP/2. Not a server to use.

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
)

// serveBare serves h on ln until ln is closed.
func serveBare(ln net.Listener, h http.Handler) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveBareConn(c, h)
	}
}

// serveBareConn serves the requests of one connection, in turn, until it
// ends or a request asks to close it.
func serveBareConn(c net.Conn, h http.Handler) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	bw := bufio.NewWriterSize(c, 4096)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		req.RemoteAddr = c.RemoteAddr().String()
		w := &bareWriter{w: bw, header: make(http.Header)}
		h.ServeHTTP(w, req)
		if w.finish() != nil || req.Close {
			return
		}
		io.Copy(io.Discard, req.Body) // what the handler left of the body
		if br.Buffered() == 0 {       // no request behind it: send the answer now
			if bw.Flush() != nil {
				return
			}
		}
	}
}

// bareWriter is the http.ResponseWriter of serveBareConn. An answer whose
// handler set Content-Length is sent as written; any other is chunked.
type bareWriter struct {
	w       *bufio.Writer
	header  http.Header
	wrote   bool // the status line and header are written
	chunked bool
}

func (w *bareWriter) Header() http.Header { return w.header }

func (w *bareWriter) WriteHeader(status int) {
	if w.wrote {
		return
	}
	w.wrote = true
	w.chunked = w.header.Get("Content-Length") == ""
	if w.chunked {
		w.header.Set("Transfer-Encoding", "chunked")
	}
	w.w.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	w.header.Write(w.w)
	w.w.WriteString("\r\n")
}

func (w *bareWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if !w.chunked {
		return w.w.Write(p)
	}
	if len(p) == 0 {
		return 0, nil // an empty chunk would end the body
	}
	w.w.WriteString(strconv.FormatInt(int64(len(p)), 16) + "\r\n")
	w.w.Write(p)
	_, err := w.w.WriteString("\r\n")
	return len(p), err
}

// FlushError sends what is buffered, as an SSE stream needs after each
// event; http.ResponseController finds it.
func (w *bareWriter) FlushError() error {
	w.WriteHeader(http.StatusOK)
	return w.w.Flush()
}

func (w *bareWriter) Flush() { w.FlushError() }

// finish ends the answer: an empty 200 if the handler wrote nothing, the
// last chunk of a chunked one.
func (w *bareWriter) finish() error {
	if !w.wrote {
		w.header.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked {
		_, err := w.w.WriteString("0\r\n\r\n")
		return err
	}
	return nil
}
