package pool

import "crypto/sha256"

// KeySet is a set of API keys that may call a pool. It stores only SHA-256
// digests of the keys, and looks a token up by its digest, so the time a
// lookup takes does not depend on how much of a real key the token shares.
//
// A nil *KeySet is an empty set. A KeySet is immutable and safe for
// simultaneous use by multiple goroutines.
type KeySet struct {
	digests map[[sha256.Size]byte]struct{}
}

// NewKeySet returns a set holding keys. Duplicates count once. An empty key
// never matches, so it is left out.
func NewKeySet(keys ...string) *KeySet {
	k := &KeySet{digests: make(map[[sha256.Size]byte]struct{}, len(keys))}
	for _, key := range keys {
		if key != "" {
			k.digests[sha256.Sum256([]byte(key))] = struct{}{}
		}
	}
	return k
}

// Contains reports whether token is one of the keys. The empty token is never
// contained.
func (k *KeySet) Contains(token string) bool {
	if k == nil || token == "" {
		return false
	}
	_, ok := k.digests[sha256.Sum256([]byte(token))]
	return ok
}

// Len returns the number of distinct keys in the set.
func (k *KeySet) Len() int {
	if k == nil {
		return 0
	}
	return len(k.digests)
}
