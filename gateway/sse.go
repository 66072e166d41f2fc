package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// maxEventBytes bounds one server-sent event that the gateway re-encodes.
const maxEventBytes = 4 << 20

// copySSE copies a stream of server-sent events, re-encoding the data of
// each event with transform and flushing after each one. Comment lines and
// fields other than data are dropped, as onwards drops them; the data lines
// of one event are joined with "\n" (the SSE rule). A transform error ends
// the stream with the event onError returns. It returns the read error of
// body, wrapped in ErrUpstreamBrokeOff, or a write error.
func copySSE(w http.ResponseWriter, body io.Reader, transform func([]byte) ([]byte, error), onError func() []byte) error {
	rc := http.NewResponseController(w)
	br := bufio.NewReaderSize(body, 4<<10) // held as long as the stream; longer lines are joined
	var data bytes.Buffer
	hasData := false
	emit := func() (stop bool, err error) {
		if !hasData {
			return false, nil
		}
		out, terr := transform(data.Bytes())
		data.Reset()
		hasData = false
		if terr != nil {
			out, stop = onError(), true
		}
		if err := writeEvent(w, out); err != nil {
			return true, err
		}
		return stop, rc.Flush()
	}
	for {
		line, rerr := readLine(br)
		if len(line) == 0 && rerr == nil { // a blank line ends an event
			if stop, err := emit(); stop || err != nil {
				return err
			}
			continue
		}
		if value, ok := dataField(line); ok {
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
			if data.Len() > maxEventBytes {
				rerr = errors.New("gateway: server-sent event over 4 MiB")
			}
		}
		if rerr != nil {
			if rerr == io.EOF { // an event not closed by a blank line still counts
				_, err := emit()
				return err
			}
			return fmt.Errorf("%w: %v", ErrUpstreamBrokeOff, rerr)
		}
	}
}

// readLine reads one line without its "\n" or "\r\n". At the end of the
// body it returns the last, unterminated, line with io.EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(long) <= maxEventBytes {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("gateway: server-sent event line over 4 MiB")
		}
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if err == io.EOF && len(line) > 0 {
		return line, io.EOF
	}
	if err == io.EOF {
		return nil, io.EOF
	}
	return line, err
}

// dataField returns the value of a "data:" line, without the one space
// that may follow the colon.
func dataField(line []byte) ([]byte, bool) {
	v, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return nil, false
	}
	return bytes.TrimPrefix(v, []byte(" ")), true
}

// writeEvent writes one event with data.
func writeEvent(w io.Writer, data []byte) error {
	buf := make([]byte, 0, len(data)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	_, err := w.Write(buf)
	return err
}

// The buffers of copyFlushing, recycled, as they would otherwise be the
// largest allocation of a request. A stream's buffer is small, as its
// events are, and taken only while an event is read and written: a stream
// held open waits for its next event holding none.
var (
	bodyBuffers   = sync.Pool{New: func() any { return new([32 << 10]byte) }}
	streamBuffers = sync.Pool{New: func() any { return new([4 << 10]byte) }}
)

// copyFlushing copies body to w as it is, flushing after every read when
// flush is set, so that each event of a stream goes out as it arrives. A
// read error is wrapped in ErrUpstreamBrokeOff; a write error is returned
// as it is.
func copyFlushing(w http.ResponseWriter, body io.Reader, flush bool) error {
	if flush {
		return copyStream(w, body)
	}
	return copyBody(w, body)
}

// copyBody is copyFlushing of a body that is not flushed as it goes.
func copyBody(w http.ResponseWriter, body io.Reader) error {
	bp := bodyBuffers.Get().(*[32 << 10]byte)
	defer bodyBuffers.Put(bp)
	for {
		n, err := body.Read(bp[:])
		if n > 0 {
			if _, werr := w.Write(bp[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return readEnd(err)
		}
	}
}

// copyStream is copyFlushing of a stream. Before each read it waits, if
// body can ([readWaiter]), until the read will not block, and only then
// takes a buffer.
func copyStream(w http.ResponseWriter, body io.Reader) error {
	rc := http.NewResponseController(w)
	for {
		waitReadable(body)
		bp := streamBuffers.Get().(*[4 << 10]byte)
		n, err := body.Read(bp[:])
		var werr error
		if n > 0 {
			_, werr = w.Write(bp[:n]) // which copies what it keeps
		}
		streamBuffers.Put(bp)
		if werr == nil && n > 0 {
			werr = rc.Flush()
		}
		if werr != nil {
			return werr
		}
		if err != nil {
			return readEnd(err)
		}
	}
}

// readEnd is what a copy returns for the read error err of its body: nil
// for its end, else err wrapped in ErrUpstreamBrokeOff.
func readEnd(err error) error {
	if err == io.EOF {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrUpstreamBrokeOff, err)
}

// readWaiter is a body that can wait until a Read of it will not block
// (or not for long), holding no buffer of the reader's meanwhile: the
// bodies of Transport, and the gateway's readers over them. What ends
// the wait early, an error or the body's end, the next Read returns.
type readWaiter interface {
	waitReadable()
}

// waitReadable is r's waitReadable, if it has one.
func waitReadable(r io.Reader) {
	if rw, ok := r.(readWaiter); ok {
		rw.waitReadable()
	}
}
