package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/sqlitedb"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/queue/queuetest"
	"github.com/tallyhq/tally/queue/sqlite"
)

// TestMain lets more tests run in parallel than there are CPUs (unless
// -test.parallel is given): they spend most of their time waiting out
// visibility timeouts and delays, not computing.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit && runtime.GOMAXPROCS(0) < 16 {
		flag.Set("test.parallel", "16")
	}
	os.Exit(m.Run())
}

func openBroker(t testing.TB, path string) *sqlite.Broker {
	t.Helper()
	b, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Broker {
		return openBroker(t, filepath.Join(t.TempDir(), "queues.db"))
	}, queuetest.Capabilities{
		RejectsStaleHandles:   true,
		MinRetention:          sqlite.MinRetention,
		ReportsOldestAge:      true,
		NoDuplicateDeliveries: true,
	})
}

// Helper-process protocol: the parent re-executes this test binary with
// -test.run=^TestHelperProcess$ and these variables set.
const (
	envRole  = "TALLY_QUEUE_HELPER" // "consume" or "hold"
	envPath  = "TALLY_QUEUE_PATH"
	envQueue = "TALLY_QUEUE_NAME"
)

// TestHelperProcess is not a test: it is the body of the consumer processes
// the multi-process tests start. It writes one line per event on stdout.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(envRole)
	if role == "" {
		return // only does something as a child of the multi-process tests
	}
	ctx := context.Background()
	b, err := sqlite.Open(ctx, os.Getenv(envPath))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	q, err := b.OpenQueue(ctx, os.Getenv(envQueue))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	switch role {
	case "consume":
		// Say ready, wait for the parent's go (so that consumers start
		// together), then receive and delete until the queue stays empty
		// for a second.
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "consume: waiting for go:", err)
			os.Exit(2)
		}
		for {
			msgs, err := q.Receive(ctx, queue.ReceiveOptions{Max: 5, Visibility: 5 * time.Minute, Wait: time.Second})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			if len(msgs) == 0 {
				os.Exit(0)
			}
			handles := make([]string, len(msgs))
			for i, m := range msgs {
				fmt.Printf("got %s %d\n", m.ID, m.ReceiveCount)
				handles[i] = m.ReceiptHandle
			}
			errs, err := q.DeleteBatch(ctx, handles)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			for _, err := range errs {
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
			}
		}
	case "hold":
		// Receive one message, report it, and wait to be killed.
		msgs, err := q.Receive(ctx, queue.ReceiveOptions{Visibility: 3 * time.Second, Wait: 10 * time.Second})
		if err != nil || len(msgs) != 1 {
			fmt.Fprintln(os.Stderr, "hold: receive:", msgs, err)
			os.Exit(2)
		}
		fmt.Printf("got %s %d\n", msgs[0].ID, msgs[0].ReceiveCount)
		select {}
	}
	os.Exit(2)
}

// helper starts a helper process and returns it with its stdin and stdout.
func helper(t *testing.T, role, path, queueName string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envPath+"="+path, envQueue+"="+queueName)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, in, bufio.NewReader(out)
}

type delivery struct {
	id    string
	count int
}

func parseDelivery(line string) (delivery, bool) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "got" {
		return delivery{}, false
	}
	n, err := strconv.Atoi(f[2])
	return delivery{f[1], n}, err == nil
}

// TestTwoProcesses has two OS processes consume one queue file at once:
// every message must be delivered exactly once (the visibility timeout is
// far longer than the test, so any second delivery would be a duplicate
// inside one window).
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "queues.db")
	b := openBroker(t, path)
	ctx := t.Context()
	q, err := b.CreateQueue(ctx, "work", queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	sent := map[string]bool{}
	for i := 0; i < n; i += queue.MaxBatch {
		var entries []queue.SendEntry
		for j := range queue.MaxBatch {
			entries = append(entries, queue.SendEntry{Body: fmt.Sprintf("job %d", i+j)})
		}
		res, err := q.SendBatch(ctx, entries)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			sent[r.MessageID] = true
		}
	}

	var (
		mu        sync.Mutex
		delivered = map[string]int{}
		perProc   [2]int
		wg        sync.WaitGroup
	)
	var (
		cmds [2]*exec.Cmd
		outs [2]*bufio.Reader
		ins  [2]io.WriteCloser
	)
	for p := range 2 {
		cmds[p], ins[p], outs[p] = helper(t, "consume", path, "work")
	}
	for p := range 2 {
		if line, err := outs[p].ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("consumer %d: %q, %v; want ready", p, line, err)
		}
	}
	for p := range 2 {
		if _, err := io.WriteString(ins[p], "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	for p := range 2 {
		wg.Go(func() {
			sc := bufio.NewScanner(outs[p])
			for sc.Scan() {
				d, ok := parseDelivery(sc.Text())
				if !ok {
					continue
				}
				if d.count != 1 {
					t.Errorf("process %d got %s with receive count %d", p, d.id, d.count)
				}
				mu.Lock()
				delivered[d.id]++
				perProc[p]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for p, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("consumer %d: %v", p, err)
		}
	}
	for id, c := range delivered {
		if c != 1 {
			t.Errorf("message %s delivered %d times", id, c)
		}
		if !sent[id] {
			t.Errorf("unknown message %s delivered", id)
		}
	}
	if len(delivered) != n {
		t.Errorf("%d of %d messages delivered", len(delivered), n)
	}
	t.Logf("deliveries per process: %v", perProc)
	st, err := q.Stats(ctx)
	if err != nil || !st.Empty() {
		t.Errorf("Stats after consuming everything = %+v, %v", st, err)
	}
}

// TestKilledConsumer kills a consumer with SIGKILL between receive and
// delete: the message must come back after its visibility timeout, once,
// with receive count 2.
func TestKilledConsumer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "queues.db")
	b := openBroker(t, path)
	ctx := t.Context()
	q, err := b.CreateQueue(ctx, "work", queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := queue.Send(ctx, q, "crash me", map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	cmd, _, out := helper(t, "hold", path, "work")
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper said nothing: %v", err)
	}
	if d, ok := parseDelivery(line); !ok || d.id != id || d.count != 1 {
		t.Fatalf("helper received %q, want %s with count 1", line, id)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("helper exited cleanly, want killed")
	}
	// Still hidden: the dead consumer's visibility timeout (3 s) runs on.
	if msgs, err := q.Receive(ctx, queue.ReceiveOptions{}); err != nil || len(msgs) != 0 {
		t.Fatalf("receive right after the kill = %v, %v; want nothing yet", msgs, err)
	}
	msgs, err := q.Receive(ctx, queue.ReceiveOptions{Wait: 10 * time.Second, Visibility: time.Minute})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive after the timeout = %v, %v", msgs, err)
	}
	m := msgs[0]
	if m.ID != id || m.ReceiveCount != 2 || m.Body != "crash me" || m.Attributes["k"] != "v" {
		t.Fatalf("redelivered %+v, want %s with receive count 2", m, id)
	}
	if err := queue.Delete(ctx, q, m.ReceiptHandle); err != nil {
		t.Fatal(err)
	}
}

// TestRedriveToDeadLetter checks what the suite cannot assert about SQS:
// the dead-letter copy starts a fresh receive count and keeps its original
// sent time, and a handle from the source queue no longer works.
func TestRedriveToDeadLetter(t *testing.T) {
	t.Parallel()
	b := openBroker(t, filepath.Join(t.TempDir(), "queues.db"))
	ctx := t.Context()
	dlq, err := b.CreateQueue(ctx, "jobs-dlq", queue.Config{Retention: queue.MaxRetention})
	if err != nil {
		t.Fatal(err)
	}
	const maxReceives = 3
	q, err := b.CreateQueue(ctx, "jobs", queue.Config{DeadLetter: "jobs-dlq", MaxReceiveCount: maxReceives})
	if err != nil {
		t.Fatal(err)
	}
	id, err := queue.Send(ctx, q, "poison", map[string]string{"a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	var sentAt time.Time
	var last string
	for i := 1; i <= maxReceives; i++ {
		msgs, err := q.Receive(ctx, queue.ReceiveOptions{})
		if err != nil || len(msgs) != 1 || msgs[0].ReceiveCount != i {
			t.Fatalf("receive %d = %+v, %v", i, msgs, err)
		}
		sentAt, last = msgs[0].SentAt, msgs[0].ReceiptHandle
		if err := queue.ChangeVisibility(ctx, q, last, 0); err != nil {
			t.Fatal(err)
		}
	}
	if msgs, err := q.Receive(ctx, queue.ReceiveOptions{}); err != nil || len(msgs) != 0 {
		t.Fatalf("receive %d = %+v, %v; want the message redriven", maxReceives+1, msgs, err)
	}
	if err := queue.Delete(ctx, q, last); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("delete with a source-queue handle after redrive: %v, want ErrInvalidArgument", err)
	}
	msgs, err := dlq.Receive(ctx, queue.ReceiveOptions{})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("dead-letter receive = %+v, %v", msgs, err)
	}
	m := msgs[0]
	if m.ID != id || m.Body != "poison" || m.Attributes["a"] != "1" || m.ReceiveCount != 1 || !m.SentAt.Equal(sentAt) {
		t.Fatalf("dead-letter message = %+v, want id %s, receive count 1, sent at %v", m, id, sentAt)
	}
	for _, qq := range []queue.Queue{q, dlq} {
		st, err := qq.Stats(ctx)
		want := queue.Stats{}
		if qq == dlq {
			want.InFlight = 1
		}
		if err != nil || st.Visible != want.Visible || st.InFlight != want.InFlight || st.Delayed != 0 {
			t.Errorf("Stats(%s) = %+v, %v", qq.Name(), st, err)
		}
	}
}

// TestPersistence reopens the file: queues and messages survive.
func TestPersistence(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "queues.db")
	ctx := t.Context()
	b1, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	q, err := b1.CreateQueue(ctx, "keep", queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := queue.Send(ctx, q, "durable", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Receive(ctx, queue.ReceiveOptions{}); err == nil {
		t.Error("receive on a closed broker succeeded")
	}
	b2 := openBroker(t, path)
	q2, err := b2.OpenQueue(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := q2.Receive(ctx, queue.ReceiveOptions{})
	if err != nil || len(msgs) != 1 || msgs[0].ID != id {
		t.Fatalf("after reopen received %+v, %v", msgs, err)
	}
}

// TestCreateQueueUpdatesConfig: re-creating a queue applies the new
// configuration (a restart with changed settings must not fail).
func TestCreateQueueUpdatesConfig(t *testing.T) {
	t.Parallel()
	b := openBroker(t, filepath.Join(t.TempDir(), "queues.db"))
	ctx := t.Context()
	if _, err := b.CreateQueue(ctx, "q", queue.Config{VisibilityTimeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	q, err := b.CreateQueue(ctx, "q", queue.Config{Delay: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Send(ctx, q, "later", nil); err != nil {
		t.Fatal(err)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Delayed != 1 {
		t.Fatalf("Stats = %+v, %v; want the new delay applied", st, err)
	}
	if _, err := b.CreateQueue(ctx, "self", queue.Config{DeadLetter: "self", MaxReceiveCount: 1}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("queue as its own dead-letter queue: %v", err)
	}
	if _, err := b.CreateQueue(ctx, "short", queue.Config{Retention: time.Millisecond}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("retention under a second: %v", err)
	}
}

// TestMalformedHandles: handles this adapter never issued fail their entry
// cleanly, without failing the batch.
func TestMalformedHandles(t *testing.T) {
	t.Parallel()
	b := openBroker(t, filepath.Join(t.TempDir(), "queues.db"))
	q, err := b.CreateQueue(t.Context(), "q", queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
	const token = "0123456789abcdef0123456789abcdef"
	for _, h := range []string{
		"",
		".",
		uuid,
		uuid + ".",
		uuid + "." + token[:31],
		uuid + "." + token + "0",
		uuid + "." + strings.ToUpper(token),
		"zzzzzzzz-d9cb-469f-a165-70867728950e." + token,
		strings.Repeat("x", 10000),
		"'; DROP TABLE messages; --",
	} {
		errs, err := q.DeleteBatch(t.Context(), []string{h})
		if err != nil || !errors.Is(errs[0], tally.ErrInvalidArgument) {
			t.Errorf("DeleteBatch(%.40q) = %v, %v; want entry ErrInvalidArgument", h, errs, err)
		}
	}
	// A well-formed handle of a message that never existed: delete is a
	// no-op (as for a message already deleted), a visibility change fails.
	if err := queue.Delete(t.Context(), q, uuid+"."+token); err != nil {
		t.Errorf("delete of an unknown message: %v", err)
	}
	if err := queue.ChangeVisibility(t.Context(), q, uuid+"."+token, 0); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("change visibility of an unknown message: %v", err)
	}
}

// BenchmarkSendReceiveDelete measures the full life of a message in batches
// of ten: SendBatch(10) + Receive(10) + DeleteBatch(10) per iteration.
func BenchmarkSendReceiveDelete(b *testing.B) {
	br := openBroker(b, filepath.Join(b.TempDir(), "queues.db"))
	ctx := context.Background()
	q, err := br.CreateQueue(ctx, "bench", queue.Config{})
	if err != nil {
		b.Fatal(err)
	}
	entries := make([]queue.SendEntry, queue.MaxBatch)
	for i := range entries {
		entries[i] = queue.SendEntry{Body: fmt.Sprintf(`{"job_id":"job-%d","image_id":"4f0c2a1e-9d7b-4c55-8f55-0b1f3e2d9a77"}`, i),
			Attributes: map[string]string{"kind": "ocr-job"}}
	}
	handles := make([]string, 0, queue.MaxBatch)
	iters := 0
	for b.Loop() {
		iters++
		if _, err := q.SendBatch(ctx, entries); err != nil {
			b.Fatal(err)
		}
		msgs, err := q.Receive(ctx, queue.ReceiveOptions{Max: queue.MaxBatch})
		if err != nil {
			b.Fatal(err)
		}
		if len(msgs) != queue.MaxBatch {
			b.Fatalf("received %d messages, want %d", len(msgs), queue.MaxBatch)
		}
		handles = handles[:0]
		for _, m := range msgs {
			handles = append(handles, m.ReceiptHandle)
		}
		if _, err := q.DeleteBatch(ctx, handles); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(iters*queue.MaxBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// TestOpensAFileWrittenBeforeReceivedAt opens a queue file from before
// received_at existed: the column is added, and a message received then is
// listed in flight by its first receive.
func TestOpensAFileWrittenBeforeReceivedAt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "queues.db")
	ctx := t.Context()
	b1 := openBroker(t, path)
	q, err := b1.CreateQueue(ctx, "old", queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := queue.Send(ctx, q, "from before", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Receive(ctx, queue.ReceiveOptions{Visibility: time.Hour}); err != nil {
		t.Fatal(err)
	}
	b1.Close()
	db, err := sqlitedb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE messages DROP COLUMN received_at`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	b2 := openBroker(t, path)
	q2, err := b2.OpenQueue(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	list, err := q2.(queue.Inspector).InFlight(ctx, 10)
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].ReceivedAt.IsZero() {
		t.Fatalf("InFlight after reopening = %+v, %v; want the message received before, with its first receive time", list, err)
	}
	if n, err := q2.(queue.Inspector).Release(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("Release = %d, %v; want 1", n, err)
	}
}
