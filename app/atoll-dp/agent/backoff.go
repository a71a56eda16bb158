package agent

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential delay: Initial, doubling up to Max.
type Backoff struct {
	// Initial is the first delay.
	Initial time.Duration
	// Max caps the delay.
	Max time.Duration
	// Jitter spreads each delay uniformly within ±Jitter of it (0.2 = ±20%),
	// so that many agents restarted together do not retry in lockstep.
	Jitter float64
}

// next returns the delay that follows prev; a zero prev yields Initial.
func (b Backoff) next(prev time.Duration) time.Duration {
	if prev <= 0 {
		return b.Initial
	}
	return min(prev*2, b.Max)
}

// spread applies the jitter to d.
func (b Backoff) spread(d time.Duration) time.Duration {
	if b.Jitter <= 0 || d <= 0 {
		return d
	}
	f := 1 + b.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// sleep waits for d or until ctx ends, and reports whether the full delay
// passed.
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
