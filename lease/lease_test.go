package lease_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/lease"
)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func setup(t *testing.T) items.Table {
	t.Helper()
	tbl, err := itemssqlite.Open(context.Background(), filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

func TestTakeoverFencesTheOldHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := setup(t)
	clk := newClock()
	opts := lease.Options{Now: clk.Now}

	a, err := lease.Acquire(ctx, tbl, "lines#compaction", "a", time.Minute, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Acquire(ctx, tbl, "lines#compaction", "b", time.Minute, opts); !errors.Is(err, lease.ErrHeld) || !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("second owner acquired a held lease: %v", err)
	}
	if err := tbl.TransactWrite(ctx, []items.Write{a.Fence(), items.PutWrite(items.Item{"PK": "X", "SK": "1"}, items.Cond{})}); err != nil {
		t.Fatalf("holder's fenced write failed: %v", err)
	}

	clk.Advance(2 * time.Minute) // a's lease lapses without a renewal
	b, err := lease.Acquire(ctx, tbl, "lines#compaction", "b", time.Minute, opts)
	if err != nil {
		t.Fatalf("take over an expired lease: %v", err)
	}
	if b.Epoch() <= a.Epoch() {
		t.Fatalf("epoch did not increase on takeover: a=%d b=%d", a.Epoch(), b.Epoch())
	}
	if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("old holder renewed after takeover: %v", err)
	}
	err = tbl.TransactWrite(ctx, []items.Write{a.Fence(), items.PutWrite(items.Item{"PK": "X", "SK": "2"}, items.Cond{})})
	if !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("old holder's fenced write: %v, want condition failed", err)
	}
	if _, err := tbl.Get(ctx, items.Key{PK: "X", SK: "2"}); !errors.Is(err, tally.ErrNotFound) {
		t.Fatalf("fenced-out write landed: %v", err)
	}
	if err := tbl.TransactWrite(ctx, []items.Write{b.Fence(), items.PutWrite(items.Item{"PK": "X", "SK": "3"}, items.Cond{})}); err != nil {
		t.Fatalf("new holder's fenced write: %v", err)
	}
}

func TestLapsedHolderCannotPassFenceEvenWithoutTakeover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := setup(t)
	clk := newClock()
	a, err := lease.Acquire(ctx, tbl, "words#compaction", "a", time.Minute, lease.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(61 * time.Second)
	err = tbl.TransactWrite(ctx, []items.Write{a.Fence(), items.PutWrite(items.Item{"PK": "X", "SK": "1"}, items.Cond{})})
	if !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("lapsed holder's fenced write: %v", err)
	}
	if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("lapsed holder renewed: %v", err)
	}
}

func TestRenewAndRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := setup(t)
	clk := newClock()
	opts := lease.Options{Now: clk.Now}
	a, err := lease.Acquire(ctx, tbl, "n", "a", time.Minute, opts)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Second)
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Second) // 100 s after acquire, 50 s after renew: still held
	if _, err := lease.Acquire(ctx, tbl, "n", "b", time.Minute, opts); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("renewed lease was taken: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := lease.Acquire(ctx, tbl, "n", "b", time.Minute, opts)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if b.Epoch() != a.Epoch()+1 {
		t.Errorf("epoch after release = %d, want %d", b.Epoch(), a.Epoch()+1)
	}
}

func TestExactlyOneOfManyWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := setup(t)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := lease.Acquire(ctx, tbl, "race", string(rune('a'+i)), time.Minute, lease.Options{})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, lease.ErrHeld):
				t.Errorf("acquire: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d owners acquired the lease, want 1", wins.Load())
	}
}

func TestBadArguments(t *testing.T) {
	t.Parallel()
	tbl := setup(t)
	for _, tc := range []struct {
		name, owner string
		ttl         time.Duration
	}{{"", "a", time.Second}, {"n", "", time.Second}, {"n", "a", 0}} {
		if _, err := lease.Acquire(context.Background(), tbl, tc.name, tc.owner, tc.ttl, lease.Options{}); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("Acquire(%q, %q, %v) = %v, want ErrInvalidArgument", tc.name, tc.owner, tc.ttl, err)
		}
	}
}

// TestKeepCancelsWhenLost: the heartbeat keeps a short lease alive past its
// ttl, and cancels the work context once someone else takes it over.
func TestKeepCancelsWhenLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := setup(t)
	ttl := time.Second
	a, err := lease.Acquire(ctx, tbl, "k", "a", ttl, lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	expiry := func() int64 {
		it, err := tbl.Get(ctx, lease.Key("k"))
		if err != nil {
			t.Fatal(err)
		}
		ms, _ := items.Int64Of(it["expires_at_ms"])
		return ms
	}
	first := expiry()
	held, stop := a.Keep(ctx, nil)
	// Several renewals, seen in the table, carry the lease past its ttl.
	renewals, last := 0, first
	waitfor.Progress(t, "lease renewals", func() (int, bool) {
		if ms := expiry(); ms != last {
			renewals, last = renewals+1, ms
		}
		return renewals, renewals >= 4
	})
	if time.UnixMilli(last).Sub(time.UnixMilli(first)) < ttl {
		t.Fatalf("renewals moved the expiry by %v, want past one ttl", time.UnixMilli(last).Sub(time.UnixMilli(first)))
	}
	if held.Err() != nil {
		t.Fatalf("held context ended while renewing: %v", context.Cause(held))
	}
	if _, err := lease.Acquire(ctx, tbl, "k", "b", ttl, lease.Options{}); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("kept lease was acquirable: %v", err)
	}
	// Steal it: expire it under a's feet, then let b take it.
	if _, err := tbl.Update(ctx, lease.Key("k"), items.Update{Expr: "SET expires_at_ms = :z", Values: map[string]any{":z": 0}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Acquire(ctx, tbl, "k", "b", time.Minute, lease.Options{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Recv(t, "the held context to be canceled after the lease was taken over", held.Done())
	if err := stop(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("stop() = %v, want ErrLost", err)
	}
	if !errors.Is(context.Cause(held), lease.ErrLost) {
		t.Fatalf("cause = %v", context.Cause(held))
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := setup(t)
	clk := newClock()
	if _, err := lease.Inspect(ctx, tbl, "words#compaction"); !errors.Is(err, tally.ErrNotFound) {
		t.Fatalf("Inspect(never taken) = %v, want ErrNotFound", err)
	}
	l, err := lease.Acquire(ctx, tbl, "words#compaction", "worker-7", time.Minute, lease.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h, err := lease.Inspect(ctx, tbl, "words#compaction")
	if err != nil {
		t.Fatal(err)
	}
	want := lease.Holder{Name: "words#compaction", Owner: "worker-7", Epoch: l.Epoch(), Expires: clk.Now().Add(time.Minute).Truncate(time.Millisecond)}
	if !h.Expires.Equal(want.Expires) || h.Owner != want.Owner || h.Epoch != want.Epoch || h.Name != want.Name {
		t.Errorf("Inspect = %+v, want %+v", h, want)
	}
}
