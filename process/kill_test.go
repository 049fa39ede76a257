//go:build unix

package process_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/process"
	"github.com/tallyhq/tally/queue"
)

const (
	envHelper = "TALLY_PROCESS_HELPER"
	envDir    = "TALLY_PROCESS_DIR"
	envPoint  = "TALLY_PROCESS_POINT"
)

// TestHelperProcess is the child of TestKilledWorker: it receives one
// record and SIGKILLs itself at the named checkpoint.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("helper process for TestKilledWorker")
	}
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
		t.Fatalf("child received %d, %v", len(msgs), err)
	}
	b.worker.HandleBatch(context.Background(), msgs)
	t.Fatalf("checkpoint %q never reached", point)
}

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
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
			cmd.Env = append(os.Environ(), envHelper+"=1", envDir+"="+dir, envPoint+"="+point)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
			}
			// The record comes back after its 1 s visibility timeout.
			msgs, err := b.queues.OCRResults.Receive(context.Background(), queue.ReceiveOptions{Max: 10, Wait: 10 * time.Second, Visibility: time.Minute})
			if err != nil || len(msgs) != 1 || msgs[0].ReceiveCount != 2 {
				t.Fatalf("after the kill: %d messages (%v), %v", len(msgs), msgs, err)
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
