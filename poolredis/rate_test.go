package poolredis

import (
	"testing"
	"time"
)

func TestGCRAResultReadsTheScriptsReply(t *testing.T) {
	for _, c := range []struct {
		res  []any
		ok   bool
		wait time.Duration
	}{
		{[]any{int64(1), "0"}, true, 0},
		{[]any{int64(0), "0.25"}, false, 250 * time.Millisecond},
		{[]any{int64(0), "0.0000000001"}, false, 1}, // rounded up, never 0
	} {
		ok, wait, err := gcraResult(c.res)
		if err != nil || ok != c.ok || wait != c.wait {
			t.Errorf("gcraResult(%v) = %v, %v, %v; want %v, %v, nil", c.res, ok, wait, err, c.ok, c.wait)
		}
	}
}

func TestGCRAResultRefusesAReplyOfAnotherShape(t *testing.T) {
	for _, res := range [][]any{
		nil,
		{int64(1)},
		{"1", "0"},
		{int64(1), int64(0)},
		{int64(1), "0", "extra"},
	} {
		if ok, _, err := gcraResult(res); err == nil || ok {
			t.Errorf("gcraResult(%v) = %v, %v; want false and an error", res, ok, err)
		}
	}
}
