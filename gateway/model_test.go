package gateway

import (
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
	model, e := bodyModel(body)
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
