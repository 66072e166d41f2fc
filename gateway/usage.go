package gateway

import (
	"bytes"
	"io"
)

// maxUsageBodyBytes bounds the JSON answer a usageReader keeps to read its
// usage; past it, the answer settles its estimate.
const maxUsageBodyBytes = 16 << 20

// usageReader passes an upstream answer's body through, byte for byte,
// while it reads the answer's token usage: in a JSON body, once the body
// has been read; in a stream of server-sent events, in each event's data.
// With strip it leaves out of a stream the usage-only chunk that
// stream_options.include_usage adds, for a client that did not ask for it.
// A stream is handed out an event at a time, so that each can be flushed
// as it comes.
type usageReader struct {
	body   io.Reader
	stream bool
	strip  bool

	total int64 // the usage's total_tokens, when seen
	seen  bool

	buf  []byte // JSON: the body so far; a stream: the event being read
	over bool   // JSON: the body outgrew maxUsageBodyBytes
	raw  bool   // a stream: an event outgrew maxEventBytes, and the rest passes unread
	out  []byte // a stream: events ready to hand out
	err  error  // a stream: the read error to hand out after out
}

func newUsageReader(body io.Reader, stream, strip bool) *usageReader {
	return &usageReader{body: body, stream: stream, strip: strip}
}

// waitReadable waits, if the body can, until a stream's next Read will
// not block: at once when an event is ready to hand out.
func (u *usageReader) waitReadable() {
	if u.stream && len(u.out) == 0 && u.err == nil {
		waitReadable(u.body)
	}
}

// usage returns the answer's total_tokens, if it reported them.
func (u *usageReader) usage() (int64, bool) { return u.total, u.seen }

func (u *usageReader) Read(p []byte) (int, error) {
	if !u.stream {
		return u.readJSON(p)
	}
	for len(u.out) == 0 && u.err == nil {
		u.fill()
	}
	if len(u.out) > 0 {
		n := copy(p, u.out)
		u.out = u.out[n:]
		return n, nil
	}
	return 0, u.err
}

// readJSON reads a JSON body through, keeping it to read its usage at the
// end.
func (u *usageReader) readJSON(p []byte) (int, error) {
	n, err := u.body.Read(p)
	if !u.over {
		if len(u.buf)+n > maxUsageBodyBytes {
			u.over, u.buf = true, nil
		} else {
			u.buf = append(u.buf, p[:n]...)
		}
	}
	if err == io.EOF && !u.over {
		u.total, _, u.seen = usageOf(u.buf)
		u.buf = nil
	}
	return n, err
}

// fill reads once from a stream's body and moves the events it completes
// to out.
func (u *usageReader) fill() {
	waitReadable(u.body)
	bp := streamBuffers.Get().(*[4 << 10]byte)
	n, err := u.body.Read(bp[:])
	if u.raw {
		u.out = append(u.out, bp[:n]...)
	} else {
		u.buf = append(u.buf, bp[:n]...)
		u.events()
	}
	streamBuffers.Put(bp)
	if err != nil {
		if len(u.buf) > 0 { // an event not closed by a blank line still counts
			u.event(u.buf)
			u.buf = u.buf[:0]
		}
		u.err = err
	}
}

// events moves each event that buf completes, up to and including the
// blank line that ends it, to out, or drops it.
func (u *usageReader) events() {
	start := 0 // of the line being looked at
	for {
		i := bytes.IndexByte(u.buf[start:], '\n')
		if i < 0 {
			break
		}
		line := u.buf[start : start+i]
		start += i + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			u.event(u.buf[:start])
			u.buf = u.buf[:copy(u.buf, u.buf[start:])]
			start = 0
		}
	}
	if len(u.buf) > maxEventBytes {
		u.raw = true
		u.out = append(u.out, u.buf...)
		u.buf = nil
	}
}

// event reads the usage of one event, ev, and hands it out, unless it is a
// usage-only chunk to strip.
func (u *usageReader) event(ev []byte) {
	var data []byte
	hasData := false
	for rest := ev; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if v, ok := dataField(bytes.TrimSuffix(line, []byte("\r"))); ok {
			if hasData {
				data = append(data, '\n') // the SSE rule for an event's data lines
			}
			data, hasData = append(data, v...), true
		}
	}
	if total, onlyUsage, ok := usageOf(data); ok {
		u.total, u.seen = total, true
		if u.strip && onlyUsage {
			return
		}
	}
	u.out = append(u.out, ev...)
}
