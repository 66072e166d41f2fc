package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// jsonDocs are documents valid and not, at the edges of the grammar; each
// is checked against json.Valid.
var jsonDocs = []string{
	// values
	`0`, `-0`, `1`, `-1`, `10`, `1.5`, `-0.0e-0`, `1E5`, `1e+5`, `1e-05`, `123456789012345678901234567890`,
	`-`, `--1`, `01`, `-01`, `1.`, `.5`, `1e`, `1e+`, `1.e5`, `+1`, `0x1`, `1_000`, `Infinity`, `NaN`,
	`true`, `false`, `null`, `tru`, `nul`, `falsey`, `True`, `nulll`,
	`""`, `"a"`, `"\"\\\/\b\f\n\r\t"`, `"\u00e9\uD83D\uDE00"`, `"\u00G0"`, `"\u12"`, `"\x"`, `"\'"`, `"a`, `"\`, `"\"`,
	"\"tab\there\"", "\"nl\nhere\"", "\"del\x7fhere\"", "\"bad \xff utf8\"", "\"\x1f\"", "\"\x20\"",
	`"0123456789abcdef0123456789abcdef"`, "\"0123456789abcdef\x01123456789abcdef\"", `"0123456\"89abcdef"`,
	"\"0123456789abcdef\x1f123456789abcdef\"", "\"0123456789abcdef\x10123456789abcdef\"", `"\u123g"`, `"\u123"`, `"\u"`,
	`"0123456789abcdef\u00e90123456789abcdef\\"`, `"0123456789abcdef\"`, `[" ",1234567,"x"]`, `"0\x12345678"`,
	// containers
	`[]`, `{}`, `[1,2]`, `[1,]`, `[,1]`, `[1 2]`, `{"a":1}`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a" 1}`,
	`{"a":1 "b":2}`, `{,}`, `[`, `]`, `{`, `}`, `[[[]]]`, `[[[]]`, `[{}]`, `{"a":[{"b":{}}]}`, `{"a":{"b":[}}`,
	`{"":""}`, `{"a":1}{}`, `[] []`, `{"a":1}x`,
	// whitespace
	``, ` `, " \t\n\r[ 1 , 2 ]\r\n\t ", "\v1", "\f1", "[1\u00a0]", " {\"a\" :\n1 } ",
}

func TestValidJSON(t *testing.T) {
	t.Parallel()
	for _, doc := range jsonDocs {
		assert.Equal(t, json.Valid([]byte(doc)), validJSON([]byte(doc)), "%q", doc)
	}
	for _, depth := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		for _, pair := range []string{"[]", `{"a":}`} {
			open, closing := pair[:len(pair)-1], pair[len(pair)-1:]
			doc := strings.Repeat(open, depth) + strings.Repeat(closing, depth)
			if pair != "[]" { // objects: the innermost holds a value
				doc = strings.Repeat(open, depth) + "0" + strings.Repeat(closing, depth)
			}
			assert.Equal(t, json.Valid([]byte(doc)), validJSON([]byte(doc)), "%s nested %d deep", pair, depth)
		}
	}
	assert.True(t, validJSON([]byte(strings.Repeat("[", maxJSONDepth)+strings.Repeat("]", maxJSONDepth))))
	assert.False(t, validJSON([]byte(strings.Repeat("[", maxJSONDepth+1)+strings.Repeat("]", maxJSONDepth+1))))
}

// FuzzValidJSON checks that validJSON agrees with json.Valid.
func FuzzValidJSON(f *testing.F) {
	for _, doc := range jsonDocs {
		f.Add([]byte(doc))
	}
	for _, tc := range modelBodies {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if got, want := validJSON(doc), json.Valid(doc); got != want {
			t.Fatalf("%q: validJSON says %v, json.Valid %v", doc, got, want)
		}
	})
}
