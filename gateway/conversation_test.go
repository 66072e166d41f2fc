package gateway

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func chatOf(t *testing.T, system, user string, later ...string) []byte {
	messages := []map[string]any{{"role": "system", "content": system}, {"role": "user", "content": user}}
	for i, text := range later {
		role := map[bool]string{true: "assistant", false: "user"}[i%2 == 0]
		messages = append(messages, map[string]any{"role": role, "content": text})
	}
	b, err := json.Marshal(map[string]any{"model": "m", "messages": messages})
	require.NoError(t, err)
	return b
}

func key(t *testing.T, h http.Header, body string) (uint64, bool) {
	t.Helper()
	if h == nil {
		h = http.Header{}
	}
	return ConversationKey(h, []byte(body))
}

func TestConversationKeyIsStableAsTheConversationGrows(t *testing.T) {
	first, ok := ConversationKey(http.Header{}, chatOf(t, "be brief", "task 1"))
	require.True(t, ok)
	later, _ := ConversationKey(http.Header{}, chatOf(t, "be brief", "task 1", "ok", "next", "done"))
	assert.Equal(t, first, later)
	other, _ := ConversationKey(http.Header{}, chatOf(t, "be brief", "task 2"))
	assert.NotEqual(t, first, other)
}

func TestConversationKeyExplicitIdentifiersComeFirst(t *testing.T) {
	body := `{"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}]`
	header, _ := key(t, http.Header{SessionHeader: {"abc"}}, body+`}`)
	withID, _ := key(t, nil, body+`,"session_id":"abc"}`)
	withCache, _ := key(t, nil, body+`,"prompt_cache_key":"abc"}`)
	opening, _ := key(t, nil, body+`}`)
	assert.Equal(t, header, withID)
	assert.Equal(t, header, withCache)
	assert.NotEqual(t, header, opening)
	empty, _ := key(t, http.Header{SessionHeader: {""}}, body+`,"session_id":""}`)
	assert.Equal(t, opening, empty, "an empty identifier is ignored")
}

func TestConversationKeyDeveloperCountsAsSystemAndOnlyTheFirst(t *testing.T) {
	a, _ := key(t, nil, `{"messages":[{"role":"developer","content":"rules"},{"role":"system","content":"more"},{"role":"user","content":"hi"}]}`)
	b, _ := key(t, nil, `{"messages":[{"role":"developer","content":"rules"},{"role":"user","content":"hi"}]}`)
	assert.Equal(t, a, b)
}

func TestConversationKeyStructuredContentAndResponsesInput(t *testing.T) {
	_, ok := key(t, nil, `{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`)
	assert.True(t, ok)
	a, _ := key(t, nil, `{"instructions":"rules","input":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`)
	b, _ := key(t, nil, `{"instructions":"rules","input":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, a, b)
	_, ok = key(t, nil, `{"input":"hello"}`)
	assert.True(t, ok)
}

func TestConversationKeyNoneWithoutAConversation(t *testing.T) {
	for _, body := range []string{`{"prompt":"complete me"}`, `{"messages":[{"role":"system","content":"only"}]}`,
		`{"messages":[]}`, `not json`, ``} {
		_, ok := key(t, nil, body)
		assert.False(t, ok, body)
	}
}

func TestConversationKeyHashIsOnwards(t *testing.T) {
	// SHA-256 of the length-prefixed parts "id" and "abc", its first 8
	// bytes little-endian: the key onwards computes for session "abc",
	// worked out apart from this code, with Python's hashlib:
	// sha256(pack('<Q',2)+b'id'+pack('<Q',3)+b'abc')[:8] read '<Q'.
	got, _ := key(t, http.Header{SessionHeader: {"abc"}}, `{}`)
	assert.Equal(t, uint64(0x875eb6588c72e1ae), got)
}
