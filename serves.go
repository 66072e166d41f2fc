package pool

import "fmt"

// Serves is which requests a provider takes, onwards' serves. The zero
// value, ServesBoth, takes every request.
type Serves uint8

const (
	// ServesBoth takes every request.
	ServesBoth Serves = iota
	// ServesChat takes every request but legacy completions.
	ServesChat
	// ServesCompletions takes legacy completions (/v1/completions) only.
	ServesCompletions
)

// RequestClass is what [Serves] scopes a request by. The zero value,
// ClassChat, is every request but a legacy completion.
type RequestClass uint8

const (
	// ClassChat is a request to any path but /v1/completions.
	ClassChat RequestClass = iota
	// ClassCompletions is a request to /v1/completions.
	ClassCompletions
)

// String returns the config's spelling: "both", "chat" or "completions".
func (s Serves) String() string {
	switch s {
	case ServesBoth:
		return "both"
	case ServesChat:
		return "chat"
	case ServesCompletions:
		return "completions"
	}
	return fmt.Sprintf("Serves(%d)", uint8(s))
}

// UnmarshalText reads "both", "chat" or "completions".
func (s *Serves) UnmarshalText(text []byte) error {
	for _, v := range []Serves{ServesBoth, ServesChat, ServesCompletions} {
		if string(text) == v.String() {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("%q is not a serves scope; want \"both\", \"chat\" or \"completions\"", text)
}

// MarshalText writes the config's spelling.
func (s Serves) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
