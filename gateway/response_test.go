package gateway

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIsEventStream(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"text/event-stream":                true,
		"text/event-stream; charset=utf-8": true,
		"Text/Event-Stream":                true,
		"text/event-stream;charset=UTF-8":  true,
		"application/json":                 false,
		"application/json; charset=utf-8":  false,
		"":                                 false,
		"text/plain":                       false,
		"text/event-streams":               false,
		"not a media type;;":               false,
	} {
		assert.Equal(t, want, isEventStream(http.Header{"Content-Type": {ct}}), "Content-Type %q", ct)
	}
	assert.False(t, isEventStream(http.Header{}), "no Content-Type")
}
