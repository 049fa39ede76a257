package compaction

import (
	"testing"
	"time"
)

// TestHeldRetryOutlastsADeadHoldersLease: the waits a message gets before
// its last receive add up to more than a lease's TTL, so a compactor that
// died holding the lease does not send healthy messages to the DLQ.
func TestHeldRetryOutlastsADeadHoldersLease(t *testing.T) {
	t.Parallel()
	ttl := DefaultLeaseTTL
	var total time.Duration
	for n := 1; n < 5; n++ { // receives 1–4 fail; the 5th is the last
		total += heldRetry(n, ttl)
	}
	if heldRetry(1, ttl) != HeldRetry || total <= ttl || heldRetry(10, ttl) != ttl {
		t.Errorf("retries %v, %v … %v (sum of four %v); want %v first, a sum over the %v TTL, capped at it",
			heldRetry(1, ttl), heldRetry(2, ttl), heldRetry(10, ttl), total, HeldRetry, ttl)
	}
}
