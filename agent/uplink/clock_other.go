//go:build !linux

package uplink

import "time"

// sinceBoot is the monotonic clock elsewhere: on Windows it counts suspended time too.
func sinceBoot() time.Duration { return time.Since(processStart) }
