package daemon

import (
	"context"
	"sync"
)

// runAPI starts the local API for the kiosk application. Not built yet.
func (d *Daemon) runAPI(ctx context.Context, wg *sync.WaitGroup) error {
	return nil
}
