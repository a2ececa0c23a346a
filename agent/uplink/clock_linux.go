package uplink

import (
	"time"

	"golang.org/x/sys/unix"
)

// sinceBoot reads CLOCK_BOOTTIME: like the monotonic clock it is never stepped, but it
// also counts the time the machine was suspended, which Go's monotonic clock on Linux
// does not. A registration PC that sleeps overnight with the platform's time pinned
// must not wake up behind by the night.
func sinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Since(processStart) // not expected on any kernel this runs on
	}
	return time.Duration(ts.Nano())
}
