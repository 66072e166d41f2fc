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
