package gateway

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzUsageReader holds the usage tap to its promise on any upstream
// bytes, read in pieces of any size: without strip it passes every byte
// through unchanged, stream or not; with strip it leaves out only whole
// events, so what it passes is the input with some events cut out, in
// order, and never more.
func FuzzUsageReader(f *testing.F) {
	f.Add([]byte(chunk("m", "a")+usageChunk+"data: [DONE]\n\n"), true, uint8(1))
	f.Add([]byte(completion("m", "x")), false, uint8(3))
	f.Add([]byte("data: {\"usage\":{\"total_tokens\":1},\"choices\":[]}\r\n\r\ndata: x"), true, uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, stream bool, piece uint8) {
		var r io.Reader = bytes.NewReader(in)
		if piece%2 == 1 {
			r = iotest.OneByteReader(r)
		}
		out, err := io.ReadAll(newUsageReader(r, stream, false))
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("without strip: %q, %v; want the input back", out, err)
		}
		if !stream {
			return
		}
		out, err = io.ReadAll(newUsageReader(bytes.NewReader(in), true, true))
		if err != nil || len(out) > len(in) || !isSubsequence(out, in) {
			t.Fatalf("with strip: %q, %v; want the input with events cut out", out, err)
		}
	})
}

// isSubsequence reports whether a's bytes appear in b in order.
func isSubsequence(a, b []byte) bool {
	for _, c := range a {
		i := bytes.IndexByte(b, c)
		if i < 0 {
			return false
		}
		b = b[i+1:]
	}
	return true
}
