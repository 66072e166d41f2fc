package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// sanitizes reports whether a 2xx answer to path is re-encoded: chat
// completions under sanitize_response; chat completions, embeddings and
// responses under strict mode.
func sanitizes(path string, sanitize, strict bool) bool {
	if strict {
		return strictPath(path)
	}
	return sanitize && strings.Contains(path, "/chat/completions")
}

// errNoChoices marks a completion without its choices array.
var errNoChoices = errors.New("no choices")

// sanitizeBody re-encodes a complete 2xx JSON answer to path with OpenAI's
// fields only and model as its model; a chat completion without its
// created time gets created (Unix seconds).
func sanitizeBody(path string, body []byte, model string, created int64) ([]byte, error) {
	switch strings.TrimSuffix(path, "/") {
	case pathEmbeddings:
		return sanitizeEmbeddings(body, model)
	case pathResponses:
		return sanitizeResponse(body, model)
	}
	var c chatCompletion
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, err
	}
	if c.Choices == nil {
		return nil, errNoChoices
	}
	c.fill(model, "chat.completion", created)
	for i := range c.Choices {
		c.Choices[i].Delta = nil
		if c.Choices[i].Message == nil {
			c.Choices[i].Message = &message{Role: "assistant"}
		}
	}
	return json.Marshal(c)
}

// fill sets the model and the defaults onwards gives missing fields (the
// time given for created), and drops the error field, which is read only
// to detect embedded errors.
func (c *chatCompletion) fill(model, object string, created int64) {
	c.Model, c.Error = model, nil
	if c.ID == "" {
		c.ID = "chatcmpl-unknown"
	}
	if c.Object == "" {
		c.Object = object
	}
	if c.Created == 0 {
		c.Created = created
	}
}

func sanitizeEmbeddings(body []byte, model string) ([]byte, error) {
	var l embeddingList
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, err
	}
	if l.Data == nil {
		return nil, errors.New("no data")
	}
	l.Object, l.Model = "list", model
	for i := range l.Data {
		l.Data[i].Object = "embedding"
	}
	return json.Marshal(l)
}

func sanitizeResponse(body []byte, model string) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, err
	}
	if fields == nil {
		return nil, errors.New("not an object")
	}
	out := make(map[string]json.RawMessage, len(responseFields))
	for _, k := range responseFields {
		if v, ok := fields[k]; ok {
			out[k] = v
		}
	}
	out["model"], _ = json.Marshal(model)
	return json.Marshal(out)
}

// done is the data of the event that ends an OpenAI stream.
var done = []byte("[DONE]")

// sanitizeChunk re-encodes the data of one event of a chat completion
// stream. An embedded provider error (an "error" object with a message or
// a code, alone or beside a chunk's fields) becomes a stand-alone
// {"error":...} event: verbatim, or, when masked, with its code masked and
// its prose replaced (strict mode, untrusted provider).
func sanitizeChunk(data []byte, model string, masked bool, created int64) ([]byte, error) {
	if bytes.Equal(bytes.TrimSpace(data), done) {
		return done, nil
	}
	var c chatCompletion
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	if env, ok := embeddedError(c.Error, masked); ok {
		return env, nil
	}
	if c.Choices == nil {
		return nil, errNoChoices
	}
	c.fill(model, "chat.completion.chunk", created)
	for i := range c.Choices {
		c.Choices[i].Message = nil
		if c.Choices[i].Delta == nil {
			c.Choices[i].Delta = &message{}
		}
	}
	return json.Marshal(c)
}

// embeddedError returns the stand-alone event for an embedded error, if
// raw is one: an object with a message or a code. null and {} are not.
func embeddedError(raw json.RawMessage, masked bool) ([]byte, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return nil, false
	}
	_, hasMsg := obj["message"]
	code, hasCode := obj["code"]
	if !hasMsg && !hasCode {
		return nil, false
	}
	if !masked {
		out, err := json.Marshal(map[string]json.RawMessage{"error": raw})
		return out, err == nil
	}
	status := maskStatus(embeddedStatus(code))
	std := standardError(status)
	out, err := json.Marshal(map[string]any{"error": map[string]any{
		"message": std.Message, "type": std.Type, "param": nil, "code": status,
	}})
	return out, err == nil
}

// embeddedStatus reads an embedded error's code as an HTTP status: a
// number, a numeric string, or a rate-limit name (429); anything else 500.
func embeddedStatus(code json.RawMessage) int {
	var n int
	if json.Unmarshal(code, &n) == nil && n >= 100 && n <= 599 {
		return n
	}
	var s string
	if json.Unmarshal(code, &s) == nil {
		if n, err := strconv.Atoi(s); err == nil && n >= 100 && n <= 599 {
			return n
		}
		switch s {
		case "rate_limit", "rate_limit_error", "rate_limit_exceeded":
			return 429
		}
	}
	return 500
}
