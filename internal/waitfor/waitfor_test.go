package waitfor

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB whose Fatalf records instead of stopping the
// goroutine, so the waits' failures can be checked.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestProgress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		steps    []int // what check returns on successive calls; finished after the last
		stall    time.Duration
		wantFail bool
	}{
		{name: "finishes at once", steps: []int{0}, stall: time.Hour},
		{name: "slow but moving", steps: []int{0, 0, 1, 1, 2, 3, 3, 4}, stall: 10 * time.Second},
		{name: "stuck", steps: append([]int{0, 1}, make([]int, 1000)...), stall: 20 * time.Millisecond, wantFail: true},
		{name: "going backwards is no progress", steps: []int{5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, stall: 8 * time.Millisecond, wantFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{TB: t}
			calls := 0
			progress(r, "work", tc.stall, 5*time.Millisecond, func() (int, bool) {
				i := min(calls, len(tc.steps)-1)
				calls++
				return max(tc.steps[i], 0), calls >= len(tc.steps)
			})
			if failed := r.fatal != ""; failed != tc.wantFail {
				t.Fatalf("failed = %v (%q), want %v", failed, r.fatal, tc.wantFail)
			}
			if tc.wantFail && !strings.Contains(r.fatal, "no progress") {
				t.Errorf("failure %q does not say there was no progress", r.fatal)
			}
		})
	}
}

func TestRecv(t *testing.T) {
	t.Parallel()
	ch := make(chan int, 1)
	ch <- 7
	if got := Recv(t, "seven", ch); got != 7 {
		t.Errorf("Recv = %d, want 7", got)
	}
}
