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
// largest allocation of a request. A stream's buffer is small: it is held
// for as long as the stream lasts, which may be minutes, and its events
// are small; the transport under it buffers reads already.
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
		bp := streamBuffers.Get().(*[4 << 10]byte)
		defer streamBuffers.Put(bp)
		return copyThrough(w, body, bp[:], true)
	}
	bp := bodyBuffers.Get().(*[32 << 10]byte)
	defer bodyBuffers.Put(bp)
	return copyThrough(w, body, bp[:], false)
}

// copyThrough is copyFlushing with buf.
func copyThrough(w http.ResponseWriter, body io.Reader, buf []byte, flush bool) error {
	rc := http.NewResponseController(w)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush {
				if ferr := rc.Flush(); ferr != nil {
					return ferr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUpstreamBrokeOff, err)
		}
	}
}
