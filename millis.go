package pool

import (
	"math"
	"time"
)

// ms converts milliseconds to a Duration, saturating instead of
// overflowing; validation reports values past the limit.
func ms(n int64) time.Duration {
	if n > maxMs {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(n) * time.Millisecond
}

// maxMs is the largest millisecond count a Duration holds.
const maxMs = math.MaxInt64 / int64(time.Millisecond)

// setMs sets *d to n milliseconds when n is set.
func setMs(d *time.Duration, n *int64) {
	if n != nil {
		*d = ms(*n)
	}
}
