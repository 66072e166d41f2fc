package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/onwardsgo/pool"
)

// bodyModel returns the "model" of a request body that is a JSON object:
// its string, or "" when the member is missing or null. A body that is not
// a JSON object, or whose model is neither a string nor null, is a 400.
// valid is validJSON(body), which the caller has checked.
//
// It reads as decoding the body into a map would (names match exactly, and
// of two members of one name the last counts), without building the map:
// the body is checked whole, then only its top level is walked.
func bodyModel(body []byte, valid bool) (string, *pool.AdmissionError) {
	if !valid {
		return "", errNotObject()
	}
	var buf [2]span
	spans, isObject := memberValues(body, "model", buf[:0])
	if !isObject {
		return "", errNotObject()
	}
	if len(spans) == 0 {
		return "", nil
	}
	last := spans[len(spans)-1]
	raw := body[last.start:last.end]
	if string(raw) == "null" {
		return "", nil
	}
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), nil // the common case: nothing to unescape
	}
	var model string
	if err := json.Unmarshal(raw, &model); err != nil {
		e := apiError(http.StatusBadRequest, "invalid_type", "invalid_request_error", "The model field must be a string.")
		e.Param = "model"
		return "", e
	}
	return model, nil
}

// errNotObject is the answer to a body that is not a JSON object.
func errNotObject() *pool.AdmissionError {
	return apiError(http.StatusBadRequest, "invalid_json", "invalid_request_error",
		"The request body is not a JSON object; send JSON such as {\"model\": \"...\", ...} with Content-Type: application/json.")
}

// RewriteModel returns body with its top-level "model" set to model: the
// value of every member of that name replaced (so that an upstream that
// reads the first of two sees it, as one that reads the last does), or,
// when there is none, a member added first. The rest of the body is kept
// byte for byte. A body that is not a JSON object is returned unchanged.
func RewriteModel(body []byte, model string) []byte {
	if !validJSON(body) {
		return body
	}
	return rewriteValid(body, model)
}

// rewriteValid is RewriteModel for a body known to be valid JSON.
func rewriteValid(body []byte, model string) []byte {
	var buf [2]span
	spans, isObject := memberValues(body, "model", buf[:0])
	if !isObject {
		return body
	}
	value, _ := json.Marshal(model) // a string always marshals
	if len(spans) == 0 {
		open := skipSpace(body, 0) + 1 // just past the '{'
		member := append(append([]byte(`"model":`), value...), ',')
		if body[skipSpace(body, open)] == '}' {
			member = member[:len(member)-1] // the only member: no comma
		}
		return slices.Concat(body[:open], member, body[open:])
	}
	out := make([]byte, 0, len(body)+len(spans)*len(value))
	last := 0
	for _, v := range spans {
		out = append(append(out, body[last:v.start]...), value...)
		last = v.end
	}
	return append(out, body[last:]...)
}

// span is where a value lies in a document: doc[start:end].
type span struct{ start, end int }

// memberValues appends to spans where the values of the members called
// name of the object doc lie, in order, and returns them; isObject is
// false when doc is not an object. doc must be valid JSON (see
// validJSON): memberValues relies on it and checks nothing.
func memberValues(doc []byte, name string, spans []span) (_ []span, isObject bool) {
	i := skipSpace(doc, 0)
	if i == len(doc) || doc[i] != '{' {
		return spans, false
	}
	// Valid JSON: after '{' or ',' comes a member; after a member, ',' or '}'.
	for i = skipSpace(doc, i+1); doc[i] == '"'; {
		keyEnd := stringEnd(doc, i)
		key := doc[i:keyEnd]
		i = skipSpace(doc, skipSpace(doc, keyEnd)+1) // past the ':'
		end := valueEnd(doc, i)
		if keyIs(key, name) {
			spans = append(spans, span{i, end})
		}
		if i = skipSpace(doc, end); doc[i] == ',' {
			i = skipSpace(doc, i+1)
		}
	}
	return spans, true
}

// keyIs reports whether the quoted key, as written, names name.
func keyIs(quoted []byte, name string) bool {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return string(quoted[1:len(quoted)-1]) == name
	}
	var key string
	return json.Unmarshal(quoted, &key) == nil && key == name
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts at i. It
// looks for quotes with bytes.IndexByte, which is fast on the long strings
// of a prompt: a quote ends the string unless an odd run of backslashes
// comes before it (in valid JSON a backslash always starts an escape, so
// "\\" is one escaped backslash and "\"" an escaped quote).
func stringEnd(doc []byte, i int) int {
	for from := i + 1; ; {
		q := from + bytes.IndexByte(doc[from:], '"')
		escaped := false
		for b := q - 1; doc[b] == '\\'; b-- { // doc[i] is a quote: the run stops there
			escaped = !escaped
		}
		if !escaped {
			return q + 1
		}
		from = q + 1
	}
}

// valueEnd returns the index just past the value that starts at i.
func valueEnd(doc []byte, i int) int {
	switch doc[i] {
	case '"':
		return stringEnd(doc, i)
	case '{', '[':
		depth := 0
		for {
			switch doc[i] {
			case '"':
				i = stringEnd(doc, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(doc) && strings.IndexByte(",}] \t\n\r", doc[i]) < 0 {
		i++ // a number, true, false or null
	}
	return i
}
