package fleet

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// backoff is autopaho's ReconnectBackoff for one client. Autopaho asks for the pause
// before attempt 0 of every connection loop, and answers 0 by default: after a broker
// restart every terminal would come back in the same instant. Here attempt 0 waits 0
// only for the very first connection (agents start at different times); after a lost
// connection it waits a random time in [0, min), and attempt n ≥ 1 waits min·2ⁿ⁻¹
// capped at max, with equal jitter (half fixed, half random), so that a fleet spreads
// itself over a growing window while the broker is away.
type backoff struct {
	min, max  time.Duration
	connected atomic.Bool // a connection came up once: later loops are reconnections
}

func (b *backoff) delay(attempt int) time.Duration {
	if attempt <= 0 {
		if !b.connected.Load() {
			return 0
		}
		return rand.N(b.min)
	}
	d := b.min
	for i := 1; i < attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	return d/2 + rand.N(d/2+1)
}
