package daemon

import (
	"context"
	"sync"
)

// runUplink starts delivery of the outbox to the platform, when one is configured.
// Delivery is not built yet: events wait in the outbox.
func (d *Daemon) runUplink(ctx context.Context, wg *sync.WaitGroup) error {
	return nil
}
