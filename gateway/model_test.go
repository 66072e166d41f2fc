package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

// mapModel is bodyModel as the gateway first wrote it, decoding the whole
// body into a map: the reference bodyModel must agree with. It returns the
// model and the error code, or "".
func mapModel(body []byte) (model, code string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return "", "invalid_json"
	}
	if raw, ok := fields["model"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &model); err != nil {
			return "", "invalid_type"
		}
	}
	return model, ""
}

// bodyModelCode is bodyModel with its error as a code.
func bodyModelCode(body []byte) (model, code string) {
	model, e := bodyModel(body, validJSON(body))
	if e != nil {
		return model, e.Code
	}
	return model, ""
}

var modelBodies = []struct{ body, model, code string }{
	{`{"model":"gpt-4o","messages":[]}`, "gpt-4o", ""},
	{` { "messages" : [ {"model": "inner"} ] , "model" : "outer" } `, "outer", ""},
	{`{"model":"a","model":"b"}`, "b", ""}, // the last of two counts
	{`{"mod\u0065l":"escaped-name"}`, "escaped-name", ""},
	{`{"Model":"x"}`, "", ""}, // names match exactly
	{`{"model":"tab\there \"q\" \u00e9"}`, "tab\there \"q\" é", ""},
	{"{\"model\":\"bad \xff utf8\"}", "bad \ufffd utf8", ""},
	{`{"model":null}`, "", ""},
	{`{"x":"ends in a backslash\\","model":"after"}`, "after", ""}, // the quote after \\ ends the string
	{`{"x":"\\\"model\":\"no\\\"","model":"yes"}`, "yes", ""},      // \\\" is a backslash and a quote, inside
	{`{"x":{"model":"nested"},"y":"}{][\"","z":[1,{"a":[]}],"w":-1.5e3,"v":true}`, "", ""},
	{`{}`, "", ""},
	{`{"model":7}`, "", "invalid_type"},
	{`{"model":["a"]}`, "", "invalid_type"},
	{`{"model":{"id":"a"}}`, "", "invalid_type"},
	{`null`, "", "invalid_json"},
	{`["a"]`, "", "invalid_json"},
	{`"model"`, "", "invalid_json"},
	{`{"model":"a",}`, "", "invalid_json"},
	{`{"model":"a"} {}`, "", "invalid_json"},
	{`{"model": "a", `, "", "invalid_json"},
	{`not json`, "", "invalid_json"},
}

func TestBodyModel(t *testing.T) {
	for _, tc := range modelBodies {
		model, code := bodyModelCode([]byte(tc.body))
		assert.Equal(t, tc.model, model, "body %q", tc.body)
		assert.Equal(t, tc.code, code, "body %q", tc.body)
		refModel, refCode := mapModel([]byte(tc.body))
		assert.Equal(t, refModel, model, "body %q: the map decode reads another model", tc.body)
		assert.Equal(t, refCode, code, "body %q: the map decode answers otherwise", tc.body)
	}
}

// FuzzBodyModel checks that bodyModel reads every body as decoding it into
// a map does.
func FuzzBodyModel(f *testing.F) {
	for _, tc := range modelBodies {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		model, code := bodyModelCode(body)
		refModel, refCode := mapModel(body)
		if model != refModel || code != refCode {
			t.Fatalf("body %q: bodyModel gives (%q, %q), the map decode (%q, %q)", body, model, code, refModel, refCode)
		}
	})
}

func TestRewriteModel(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"model":"a","n":1}`:                 `{"model":"b","n":1}`,
		`{ "messages": [], "model" : "a" }`:   `{ "messages": [], "model" : "b" }`, // the rest byte for byte
		`{"model":"a","model":"c"}`:           `{"model":"b","model":"b"}`,         // every one of two
		`{"mod\u0065l":"a"}`:                  `{"mod\u0065l":"b"}`,
		`{"model":{"x":[1,"}"]},"n":"model"}`: `{"model":"b","n":"model"}`,
		`{"x":{"model":"inner"}}`:             `{"model":"b","x":{"model":"inner"}}`,
		`{"n":1}`:                             `{"model":"b","n":1}`,
		`{}`:                                  `{"model":"b"}`,
		" {\n} ":                              ` {"model":"b"` + "\n} ",
	} {
		assert.Equal(t, want, string(RewriteModel([]byte(body), "b")), "body %q", body)
	}
	assert.Equal(t, `{"model":"a\u003cb\"c"}`, string(RewriteModel([]byte(`{"model":"x"}`), `a<b"c`)),
		"the model is encoded as encoding/json encodes a string")
	for _, body := range []string{`not json`, `[1]`, `null`, `"model"`, ``, `{"model":"a",}`} {
		assert.Equal(t, body, string(RewriteModel([]byte(body), "b")), "left as it is: %q", body)
	}
}

// mapRewrite is RewriteModel as the gateway first wrote it, through a map:
// the reference RewriteModel must agree with, once both are decoded.
func mapRewrite(body []byte, model string) []byte {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil || fields == nil {
		return body
	}
	fields["model"], _ = json.Marshal(model)
	out, err := json.Marshal(fields)
	if err != nil {
		return body
	}
	return out
}

// FuzzRewriteModel checks that RewriteModel gives a body that decodes to
// what the map rewrite's does, and leaves alone what that leaves alone.
func FuzzRewriteModel(f *testing.F) {
	for _, tc := range modelBodies {
		f.Add([]byte(tc.body), "gpt-4o")
	}
	f.Add([]byte(`{"a":1,"a":2,"model":"x"}`), "m<&>")
	f.Fuzz(func(t *testing.T, body []byte, model string) {
		got, ref := RewriteModel(body, model), mapRewrite(body, model)
		if bytes.Equal(ref, body) { // not a JSON object, or already as rewritten
			if !bytes.Equal(got, body) {
				t.Fatalf("body %q: the map rewrite leaves it as it is, RewriteModel gives %q", body, got)
			}
			return
		}
		var gotV, refV any
		if err := json.Unmarshal(got, &gotV); err != nil {
			t.Fatalf("body %q: RewriteModel gives %q, which does not decode: %v", body, got, err)
		}
		json.Unmarshal(ref, &refV)
		gotJ, _ := json.Marshal(gotV)
		refJ, _ := json.Marshal(refV)
		if !bytes.Equal(gotJ, refJ) {
			t.Fatalf("body %q: RewriteModel gives %s, the map rewrite %s", body, gotJ, refJ)
		}
	})
}
