//go:build unix

package process_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/process"
	"github.com/tallyhq/tally/queue"
)

const (
	envHelper = "TALLY_PROCESS_HELPER"
	envDir    = "TALLY_PROCESS_DIR"
	envPoint  = "TALLY_PROCESS_POINT"
)

// TestMain runs the child of TestKilledWorker instead of the tests when the
// environment names it.
func TestMain(m *testing.M) {
	if os.Getenv(envHelper) == "1" {
		helperProcess()
	}
	os.Exit(m.Run())
}

// helperProcess is the child of TestKilledWorker: it receives one record
// and SIGKILLs itself at the named checkpoint. Any other end is a failure
// the parent reports with the child's output.
func helperProcess() {
	var t childTB
	point := os.Getenv(envPoint)
	b := setup(t, os.Getenv(envDir), func(c *process.Config) {
		c.Checkpoint = func(p string) {
			if p == point {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	})
	msgs, err := b.queues.OCRResults.Receive(context.Background(), queue.ReceiveOptions{Max: 1, Visibility: time.Second})
	if err != nil || len(msgs) != 1 {
		t.Fatal("child received", len(msgs), "messages:", err)
	}
	b.worker.HandleBatch(context.Background(), msgs)
	t.Fatal("checkpoint", point, "never reached")
}

// childTB is what setup needs of a test, in the child, which has none: a
// fatal error ends the process (exit status 2, not the SIGKILL the parent
// waits for). Cleanups are not run: the child never ends normally.
type childTB struct{}

func (childTB) Helper()           {}
func (childTB) Cleanup(func())    {}
func (childTB) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(2) }

// TestKilledWorker SIGKILLs a worker process in the middle of a record, at
// each checkpoint; after the message comes back, another worker completes
// the receipt and nothing is duplicated.
func TestKilledWorker(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"entities", "deltas", "run"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b := setup(t, dir, nil)
			acc := b.submitScan(t, 0)
			// TestMain runs the child; -test.run=^$ keeps it from running
			// the tests if it did not.
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envHelper+"=1", envDir+"="+dir, envPoint+"="+point)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
			}
			// The record comes back after its 1 s visibility timeout.
			var msgs []queue.Message
			waitfor.True(t, "the record to come back", func() bool {
				got, err := b.queues.OCRResults.Receive(context.Background(), queue.ReceiveOptions{Max: 10, Wait: time.Second, Visibility: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, got...)
				return len(msgs) > 0
			})
			if len(msgs) != 1 || msgs[0].ReceiveCount != 2 {
				t.Fatalf("after the kill: %d messages (%v)", len(msgs), msgs)
			}
			if errs := b.worker.HandleBatch(context.Background(), msgs); errs[0] != nil {
				t.Fatal(errs[0])
			}
			c := b.count(t, acc.ImageID)
			want := counts{lines: 40, words: 104, receiptLines: 40, receiptWords: 104, rows: c.rows, runs: 1, lineDeltas: 1, wordDeltas: 1}
			if c != want || c.rows == 0 {
				t.Errorf("after restart = %+v, want %+v", c, want)
			}
		})
	}
}
