package agent

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff spaces out retries: min doubling up to max, each wait drawn from
// its upper half so that a fleet that lost the hub at the same moment does
// not come back in step.
type backoff struct {
	min, max time.Duration
	n        int
	rand     func() float64 // in [0,1); tests make it fixed
}

func newBackoff(lo, hi time.Duration) *backoff {
	return &backoff{min: lo, max: hi, rand: rand.Float64}
}

// Next is the wait before the next attempt.
func (b *backoff) Next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	if d > b.max || d <= 0 {
		d = b.max
	}
	if b.n < 62 {
		b.n++
	}
	return d/2 + time.Duration(b.rand()*float64(d/2))
}

// Reset starts again from min after a success.
func (b *backoff) Reset() { b.n = 0 }

// jitter spreads d by ±10%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// sleep waits d or until ctx ends; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
