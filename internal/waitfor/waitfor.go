// Package waitfor is how tests wait for real state: they poll it, or wait
// on a signal, and fail only when nothing has moved for a long time. A test
// never fails because the machine is busy and the work is merely slow; it
// fails when the work is stuck. The whole run's backstop is go test's own
// -timeout.
package waitfor

import (
	"testing"
	"time"
)

// Stall is how long a wait may see no progress before it fails: far longer
// than any one step takes on a loaded machine, short enough that a stuck
// pipeline is reported well inside go test's -timeout.
const Stall = 3 * time.Minute

// Poll is how often the waits look at the state they poll.
const Poll = 50 * time.Millisecond

// Progress polls check until it reports finished. check returns how many
// units of work are done so far (receipts processed, runs completed, …);
// the wait fails only when that count has not grown for Stall. Errors are
// check's to report, with t.Fatal. It returns the final count.
func Progress(t testing.TB, what string, check func() (done int, finished bool)) int {
	t.Helper()
	return progress(t, what, Stall, Poll, check)
}

// ProgressEvery is Progress polling every interval instead of every Poll,
// for checks that cost the system under test real work.
func ProgressEvery(t testing.TB, what string, every time.Duration, check func() (done int, finished bool)) int {
	t.Helper()
	return progress(t, what, Stall, every, check)
}

func progress(t testing.TB, what string, stall, every time.Duration, check func() (int, bool)) int {
	t.Helper()
	best, since := -1, time.Now()
	for {
		done, finished := check()
		if finished {
			return done
		}
		if done > best {
			best, since = done, time.Now()
		} else if time.Since(since) > stall {
			t.Fatalf("waiting for %s: no progress for %v (stuck at %d done)", what, stall, best)
			return best
		}
		time.Sleep(every)
	}
}

// True polls cond until it holds, failing t when it has not within Stall:
// for a wait on one step, which has no smaller progress to count.
func True(t testing.TB, what string, cond func() bool) {
	t.Helper()
	progress(t, what, Stall, Poll, func() (int, bool) { return 0, cond() })
}

// Recv waits for a value on ch, failing t after Stall without one.
func Recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(Stall)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("waiting for %s: nothing within %v", what, Stall)
		var zero T
		return zero
	}
}
