package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"net/http"
)

// SessionHeader is the header that names a request's conversation, as in
// onwards.
const SessionHeader = "X-Session-Id"

// ConversationKey returns the key of the conversation a request belongs
// to, for a pool's affinity ([pool.Affinity]), and false when the request
// names none. It is, as onwards computes it, so that replicas of either
// agree:
//
//   - the SessionHeader, or else a non-empty "session_id" or
//     "prompt_cache_key" string of the body;
//   - or else the conversation's opening, which clients resend with each
//     turn: its first "system" or "developer" message with its first
//     message of another role (chat completions), or "instructions" with
//     the first "input" item (responses).
//
// The key is SHA-256 over the length-prefixed parts, its first 8 bytes
// read little-endian.
func ConversationKey(h http.Header, body []byte) (uint64, bool) {
	if id := h.Get(SessionHeader); id != "" {
		return hashParts([]byte("id"), []byte(id)), true
	}
	var doc struct {
		SessionID      json.RawMessage `json:"session_id"`
		PromptCacheKey json.RawMessage `json:"prompt_cache_key"`
		Messages       json.RawMessage `json:"messages"`
		Instructions   json.RawMessage `json:"instructions"`
		Input          json.RawMessage `json:"input"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return 0, false
	}
	for _, raw := range []json.RawMessage{doc.SessionID, doc.PromptCacheKey} {
		if id, ok := nonEmptyString(raw); ok {
			return hashParts([]byte("id"), []byte(id)), true
		}
	}
	system, first, ok := opening(doc.Messages, doc.Instructions, doc.Input)
	if !ok {
		return 0, false
	}
	parts := [][]byte{[]byte("open")}
	if system != nil {
		parts = append(parts, []byte(system.role), canonical(system.content))
	}
	return hashParts(append(parts, []byte(first.role), canonical(first.content))...), true
}

// turn is a message's role and content, as written.
type turn struct {
	role    string
	content json.RawMessage
}

// opening returns the first system or developer message, if any, and the
// first message of another role.
func opening(messages, instructions, input json.RawMessage) (*turn, turn, bool) {
	var items []json.RawMessage
	if json.Unmarshal(messages, &items) == nil && messages != nil {
		return splitOpening(items, nil)
	}
	var system *turn
	if _, ok := nonEmptyString(instructions); ok {
		system = &turn{role: "system", content: instructions}
	}
	if _, ok := nonEmptyString(input); ok {
		return system, turn{role: "user", content: input}, true
	}
	if json.Unmarshal(input, &items) != nil || input == nil {
		return nil, turn{}, false
	}
	return splitOpening(items, system)
}

func splitOpening(items []json.RawMessage, system *turn) (*turn, turn, bool) {
	for _, item := range items {
		var m struct {
			Role    *string         `json:"role"`
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(item, &m) != nil || m.Role == nil {
			continue
		}
		switch {
		case *m.Role == "system" || *m.Role == "developer":
			if system == nil {
				system = &turn{role: *m.Role, content: m.Content}
			}
		default:
			return system, turn{role: *m.Role, content: m.Content}, true
		}
	}
	return nil, turn{}, false
}

// nonEmptyString returns the value of a JSON string that is not empty.
func nonEmptyString(raw json.RawMessage) (string, bool) {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil || s == "" {
		return "", false
	}
	return s, true
}

// canonical is a content's text, for a string, or else its compact JSON
// with the keys of objects sorted (null when absent), as onwards writes
// it.
func canonical(content json.RawMessage) []byte {
	if s, err := stringOf(content); err == nil {
		return []byte(s)
	}
	var v any
	if json.Unmarshal(content, &v) != nil {
		return []byte("null")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func stringOf(raw json.RawMessage) (string, error) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// hashParts is SHA-256 over the length-prefixed parts, truncated to its
// first 8 bytes, little-endian.
func hashParts(parts ...[]byte) uint64 {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return binary.LittleEndian.Uint64(h.Sum(nil)[:8])
}
