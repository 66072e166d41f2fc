package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/onwardsgo/pool"
)

// Strict mode (onwards' strict_mode) serves these paths and no others.
const (
	pathChat       = "/v1/chat/completions"
	pathEmbeddings = "/v1/embeddings"
	pathResponses  = "/v1/responses"
	pathModels     = "/v1/models"
)

// strictPath reports whether strict mode serves a POST to path.
func strictPath(path string) bool {
	switch strings.TrimSuffix(path, "/") {
	case pathChat, pathEmbeddings, pathResponses:
		return true
	}
	return false
}

// validateRequest checks a strict-mode request body against OpenAI's
// schema for its path, before any upstream is called. It returns a 400
// naming the field at fault, or nil.
func validateRequest(path string, body []byte) *pool.AdmissionError {
	var err error
	switch strings.TrimSuffix(path, "/") {
	case pathChat:
		err = validateChat(body)
	case pathEmbeddings:
		err = validateEmbeddings(body)
	case pathResponses:
		err = validateResponses(body)
	}
	if err == nil {
		return nil
	}
	var fe *fieldError
	if !errors.As(err, &fe) {
		fe = &fieldError{msg: err.Error()}
	}
	e := apiError(http.StatusBadRequest, "invalid_request", "invalid_request_error", "Invalid request: "+fe.Error())
	e.Param = fe.field
	return e
}

// fieldError is a request field that breaks the schema.
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

// decodeStrict decodes body into v and turns a type error into a
// fieldError that names the field.
func decodeStrict(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te) && te.Field != "":
		return &fieldError{field: te.Field, msg: fmt.Sprintf("want %s, got %s", kindOf(te.Type.Kind().String()), te.Value)}
	case errors.As(err, &te):
		return &fieldError{msg: fmt.Sprintf("the body must be a JSON object, not %s", te.Value)}
	}
	return &fieldError{msg: "the body is not valid JSON"}
}

// kindOf names a Go kind the way a JSON user thinks of it.
func kindOf(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "float64", "float32":
		return "a number"
	}
	return "a non-negative integer"
}

// jsonKind returns the first byte of a JSON value: one of "{[tfn0 or '"'.
func jsonKind(v json.RawMessage) byte {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

var chatRoles = []string{"system", "developer", "user", "assistant", "tool", "function"}

func validateChat(body []byte) error {
	var req chatRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if err := requireModel(req.Model); err != nil {
		return err
	}
	if req.Messages == nil {
		return &fieldError{field: "messages", msg: "required; want an array of messages"}
	}
	if len(*req.Messages) == 0 {
		return &fieldError{field: "messages", msg: "empty; want at least one message"}
	}
	for i, m := range *req.Messages {
		place := fmt.Sprintf("messages[%d]", i)
		if m.Role == nil || !slices.Contains(chatRoles, *m.Role) {
			return &fieldError{field: place + ".role", msg: "want one of " + strings.Join(chatRoles, ", ")}
		}
		switch jsonKind(m.Content) {
		case 0, '"', '[', 'n':
		default:
			return &fieldError{field: place + ".content", msg: "want a string, an array of content parts or null"}
		}
	}
	switch jsonKind(req.Stop) {
	case 0, '"', '[', 'n':
	default:
		return &fieldError{field: "stop", msg: "want a string or an array of strings"}
	}
	return nil
}

func validateEmbeddings(body []byte) error {
	var req embeddingsRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if err := requireModel(req.Model); err != nil {
		return err
	}
	switch jsonKind(req.Input) {
	case '"', '[':
		return nil
	case 0:
		return &fieldError{field: "input", msg: "required; want a string or an array"}
	}
	return &fieldError{field: "input", msg: "want a string or an array"}
}

func validateResponses(body []byte) error {
	var req responsesRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if err := requireModel(req.Model); err != nil {
		return err
	}
	if req.Stream != nil && *req.Stream {
		return &fieldError{field: "stream", msg: "streaming is not supported for /v1/responses in strict mode; set stream to false"}
	}
	switch jsonKind(req.Input) {
	case 0, '"', '[', 'n':
		return nil
	}
	return &fieldError{field: "input", msg: "want a string or an array of input items"}
}

func requireModel(model *string) error {
	if model == nil || *model == "" {
		return &fieldError{field: "model", msg: "required; want the name of a model listed at /v1/models"}
	}
	return nil
}
