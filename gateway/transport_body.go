package gateway

// A response body that a Transport hands out: read straight from its
// connection, which goes back to the Transport at the body's end.

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
)

// transportBody is a response body read straight from its connection,
// which it gives back to the Transport when read to the end.
type transportBody struct {
	body  io.ReadCloser
	t     *Transport
	c     *upstreamConn
	ctx   context.Context
	stop  func() bool // stops the context's hook that closes c
	reuse bool
	state atomic.Uint32 // bodyOpen, bodyRead or bodyClosed
}

const (
	bodyOpen   = iota
	bodyRead   // read to the end; c is given back or closed
	bodyClosed // closed early or failed; c is closed
)

// errBodyClosed is what a read of a body already closed returns, as
// net/http's does.
var errBodyClosed = errors.New("http: read on closed response body")

func (b *transportBody) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case bodyRead:
		return 0, io.EOF
	case bodyClosed:
		return 0, errBodyClosed
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		if b.state.CompareAndSwap(bodyOpen, bodyRead) {
			b.t.done(b.c, b.reuse, b.stop)
		}
	case err != nil:
		b.fail()
		if b.ctx.Err() != nil {
			err = b.ctx.Err()
		}
	}
	return n, err
}

// waitReadable waits until the connection's buffer has something for the
// next Read, reading into it if it has nothing: a read of the body then
// finds its bytes there, and a stream held open waits for its next event
// in the connection's buffer, which it holds anyway, rather than in its
// reader's. It reads nothing past the body: the body's last bytes come
// with io.EOF (net/http's reader of a body gives its end with them, or
// with the chunk that ends it), and after that no Read waits.
func (b *transportBody) waitReadable() {
	if b.state.Load() == bodyOpen {
		b.c.br.Peek(1) // an error is the next Read's, which reads again
	}
}

// Close closes the body and, unless it was read to the end, its
// connection.
func (b *transportBody) Close() error {
	b.fail()
	return nil
}

// fail closes the connection of a body not read to the end.
func (b *transportBody) fail() {
	if b.state.CompareAndSwap(bodyOpen, bodyClosed) {
		b.stop()
		b.c.close()
	}
}
