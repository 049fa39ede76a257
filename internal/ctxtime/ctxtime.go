// Package ctxtime waits in ways that a context can cut short, so every
// retry loop (HTTP clients, batch retries, queue polling) backs off the same
// way and none outlives its caller.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx ends, whichever comes first; it returns
// ctx's error when the wait was cut short.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
