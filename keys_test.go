package pool

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestKeySet(t *testing.T) {
	t.Parallel()
	k := NewKeySet("sk-a", "sk-b", "sk-a", "")
	assert.Equal(t, 2, k.Len(), "duplicates count once and the empty key is left out")
	assert.True(t, k.Contains("sk-a"))
	assert.True(t, k.Contains("sk-b"))
	for _, miss := range []string{"", "sk-", "sk-a ", "sk-ab", "SK-A", "sk-c"} {
		assert.False(t, k.Contains(miss), "%q", miss)
	}

	var none *KeySet
	assert.Equal(t, 0, none.Len())
	assert.False(t, none.Contains("sk-a"))
	assert.Equal(t, 0, NewKeySet().Len())
}

func TestPoolKeys(t *testing.T) {
	t.Parallel()
	providers := []*Provider{NewProvider(newTestTarget(t, "https://api.example.com"), 1)}
	assert.Nil(t, newTestPool(t, providers).Keys())
	assert.Nil(t, newTestPool(t, providers, WithKeys(NewKeySet())).Keys(), "an empty set means no keys")
	keys := NewKeySet("sk-team")
	assert.Same(t, keys, newTestPool(t, providers, WithKeys(keys)).Keys())
}
