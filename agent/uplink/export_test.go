package uplink

import "time"

// SetWallClock makes f the local clock the uplink reads, as a technician or NTP
// stepping it would, until the returned restore is called. Tests that use it must not
// run in parallel.
func SetWallClock(f func() time.Time) (restore func()) {
	wallNow = f
	return func() { wallNow = time.Now }
}
