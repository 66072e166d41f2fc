package gateway

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// DefaultCompletionEstimate is the completion tokens that [EstimateTokens]
// counts for a request that sets neither max_completion_tokens nor
// max_tokens.
const DefaultCompletionEstimate = 256

// bytesPerToken is the prompt estimate's ratio: about four bytes of
// English text a token, counted over the whole JSON body, so that the
// estimate errs high.
const bytesPerToken = 4

// EstimateTokens estimates the tokens, prompt and completion, that the
// request to path with body will use, for a token limit to reserve before
// the answer tells: the body's size in bytes over 4, plus its
// max_completion_tokens, else its max_tokens, else
// [DefaultCompletionEstimate]; an embeddings request (a path ending in
// /embeddings) has no completion. The answer's usage settles the
// reservation, so an estimate needs only to be of the right size.
func EstimateTokens(path string, body []byte) int64 {
	return estimateTokens(path, body, validJSON(body))
}

// estimateTokens is EstimateTokens for a body whose validity as JSON is
// known, as the Handler knows it.
func estimateTokens(path string, body []byte, valid bool) int64 {
	prompt := int64(len(body)+bytesPerToken-1) / bytesPerToken
	if strings.HasSuffix(strings.TrimSuffix(path, "/"), "/embeddings") {
		return prompt
	}
	completion := int64(DefaultCompletionEstimate)
	if valid {
		if n, ok := intMember(body, "max_completion_tokens"); ok {
			completion = n
		} else if n, ok := intMember(body, "max_tokens"); ok {
			completion = n
		}
	}
	return prompt + completion
}

// intMember returns the last top-level member called name of the valid
// JSON object doc, if it is a non-negative integer.
func intMember(doc []byte, name string) (int64, bool) {
	var buf [2]span
	spans, _ := memberValues(doc, name, buf[:0])
	if len(spans) == 0 {
		return 0, false
	}
	v := spans[len(spans)-1]
	n, err := strconv.ParseInt(string(doc[v.start:v.end]), 10, 64)
	return n, err == nil && n >= 0
}

// askUsage returns body, a valid JSON chat request, asking for usage in
// the last chunk of its stream (stream_options.include_usage), and whether
// it had to: false when the request is not streamed or the client asked
// already. Other members of stream_options are kept.
func askUsage(body []byte) ([]byte, bool) {
	var buf [2]span
	streams, isObject := memberValues(body, "stream", buf[:0])
	if !isObject || len(streams) == 0 || string(lastValue(body, streams)) != "true" {
		return body, false
	}
	opts, _ := memberValues(body, "stream_options", nil)
	if len(opts) == 0 {
		open := skipSpace(body, 0) + 1 // just past the '{', and "stream" follows
		return slices.Concat(body[:open], []byte(`"stream_options":{"include_usage":true},`), body[open:]), true
	}
	v := opts[len(opts)-1]
	var members map[string]json.RawMessage
	if json.Unmarshal(body[v.start:v.end], &members) != nil || members == nil {
		return body, false // not an object: the upstream will refuse it as it is
	}
	if string(members["include_usage"]) == "true" {
		return body, false
	}
	members["include_usage"] = json.RawMessage("true")
	value, _ := json.Marshal(members)
	return slices.Concat(body[:v.start], value, body[v.end:]), true
}

// lastValue is the value of the last of spans in doc.
func lastValue(doc []byte, spans []span) []byte {
	v := spans[len(spans)-1]
	return doc[v.start:v.end]
}

// usageOf returns the total_tokens of the usage of an OpenAI answer or
// stream chunk, data, if it reports one; onlyUsage is whether it is the
// usage-only chunk that include_usage adds (no choices).
func usageOf(data []byte) (total int64, onlyUsage, ok bool) {
	if !bytes.Contains(data, []byte(`"usage"`)) {
		return 0, false, false
	}
	var v struct {
		Choices *[]json.RawMessage `json:"choices"`
		Usage   *struct {
			TotalTokens *int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	if json.Unmarshal(data, &v) != nil || v.Usage == nil || v.Usage.TotalTokens == nil || *v.Usage.TotalTokens < 0 {
		return 0, false, false
	}
	return *v.Usage.TotalTokens, v.Choices != nil && len(*v.Choices) == 0, true
}
