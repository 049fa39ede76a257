package coalesce

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
	"github.com/tallyhq/tally/embed/embedtest"
	"github.com/tallyhq/tally/embed/hashed"
	"github.com/tallyhq/tally/internal/waitfor"
)

// never is a Window no test waits out: groups go when MaxCallers or
// MaxTexts says so, which keeps the tests deterministic.
const never = time.Hour

func TestConformance(t *testing.T) {
	// The default Window: every call goes out alone after 20 ms.
	embedtest.Run(t, func(t *testing.T) embed.Embedder {
		return New(newRecording(t, 64), Options{})
	}, embedtest.Capabilities{Deterministic: true, Lexical: true})
}

// TestConformanceShared runs the suite through one Coalescer, so the
// suite's parallel subtests are grouped with each other.
func TestConformanceShared(t *testing.T) {
	shared := New(newRecording(t, 64), Options{Window: time.Millisecond})
	embedtest.Run(t, func(t *testing.T) embed.Embedder { return shared }, embedtest.Capabilities{Deterministic: true, Lexical: true})
}

func TestConcurrentCallersShareOneInnerCall(t *testing.T) {
	t.Parallel()
	const callers = 10
	inner := newRecording(t, 128)
	c := New(inner, Options{Window: never, MaxCallers: callers})
	batches := make([][]string, callers)
	var all []string
	for i := range batches {
		for j := range i + 1 { // receipts of 1 to 10 lines
			batches[i] = append(batches[i], fmt.Sprintf("RECEIPT %d LINE %d", i, j))
		}
		all = append(all, batches[i]...)
	}

	got := make([][][]float32, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { got[i], errs[i] = c.Embed(context.Background(), batches[i]) })
	}
	wg.Wait()

	calls := inner.callTexts()
	if len(calls) != 1 {
		t.Fatalf("inner called %d times for %d concurrent callers, want 1", len(calls), callers)
	}
	sent := slices.Sorted(slices.Values(calls[0]))
	if want := slices.Sorted(slices.Values(all)); !slices.Equal(sent, want) {
		t.Fatalf("inner call held %d texts %q, want all %d", len(sent), sent, len(want))
	}
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		want := mustEmbed(t, inner.Embedder, batches[i])
		if len(got[i]) != len(want) {
			t.Fatalf("caller %d got %d vectors for %d texts", i, len(got[i]), len(want))
		}
		for j := range want {
			if !slices.Equal(got[i][j], want[j]) {
				t.Errorf("caller %d vector %d is not its text's", i, j)
			}
		}
	}
}

func TestInnerErrorReachesEveryCaller(t *testing.T) {
	t.Parallel()
	boom := errors.New("rate limited")
	for _, tc := range []struct {
		name  string
		inner embed.Embedder
		want  error
	}{
		{"inner fails", stub{err: boom}, boom},
		{"inner returns too few", stub{vectors: [][]float32{{1, 0, 0, 0}}}, ErrInnerMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const callers = 3
			c := New(tc.inner, Options{Window: never, MaxCallers: callers})
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() { _, errs[i] = c.Embed(context.Background(), []string{"a", "b"}) })
			}
			wg.Wait()
			for i, err := range errs {
				if !errors.Is(err, tc.want) {
					t.Errorf("caller %d error = %v, want %v", i, err, tc.want)
				}
			}
		})
	}
}

// TestCancelWhileWaiting: a caller that gives up before its group goes
// returns at once, and its texts are not sent.
func TestCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	inner := newRecording(t, 64)
	c := New(inner, Options{Window: never, MaxCallers: 2})
	joined := make(chan struct{}, 3)
	c.joined = func() { joined <- struct{}{} }

	ctx, cancel := context.WithCancel(context.Background())
	quitter := make(chan error, 1)
	go func() {
		_, err := c.Embed(ctx, []string{"QUITTER"})
		quitter <- err
	}()
	recv(t, joined)
	cancel()
	if err := recv(t, quitter); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller error = %v, want context.Canceled", err)
	}

	// The quitter left, so two more callers fill the group.
	var wg sync.WaitGroup
	for _, text := range []string{"STAYER ONE", "STAYER TWO"} {
		wg.Go(func() {
			vs, err := c.Embed(context.Background(), []string{text})
			if err != nil || len(vs) != 1 {
				t.Errorf("caller %q: %d vectors, %v", text, len(vs), err)
			}
		})
	}
	wg.Wait()
	calls := inner.callTexts()
	if len(calls) != 1 || slices.Contains(calls[0], "QUITTER") || len(calls[0]) != 2 {
		t.Errorf("inner calls = %q, want one with the two stayers only", calls)
	}
}

// TestCancelWhileInFlight: a caller that gives up during the inner call
// returns at once; the others still get their vectors; once every caller
// has left, the inner call's context ends.
func TestCancelWhileInFlight(t *testing.T) {
	t.Parallel()
	inner := newBlocking(t)
	c := New(inner, Options{Window: never, MaxCallers: 2})

	quitCtx, quit := context.WithCancel(context.Background())
	quitter := make(chan error, 1)
	go func() {
		_, err := c.Embed(quitCtx, []string{"QUITTER"})
		quitter <- err
	}()
	stayer := make(chan result, 1)
	go func() {
		vs, err := c.Embed(context.Background(), []string{"STAYER"})
		stayer <- result{vs, err}
	}()

	recv(t, inner.started)
	quit()
	if err := recv(t, quitter); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller error = %v, want context.Canceled", err)
	}
	close(inner.release)
	r := recv(t, stayer)
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := mustEmbed(t, inner.Embedder, []string{"STAYER"})
	if len(r.vectors) != 1 || !slices.Equal(r.vectors[0], want[0]) {
		t.Error("the remaining caller did not get its vector")
	}
}

func TestEveryCallerLeavingEndsTheInnerCall(t *testing.T) {
	t.Parallel()
	inner := newBlocking(t) // never released: only a canceled context ends it
	c := New(inner, Options{Window: never, MaxCallers: 2})
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.Embed(ctx, []string{"x"})
			errs <- err
		}()
	}
	recv(t, inner.started)
	cancel()
	for range 2 {
		if err := recv(t, errs); !errors.Is(err, context.Canceled) {
			t.Errorf("caller error = %v, want context.Canceled", err)
		}
	}
	if err := recv(t, inner.ended); !errors.Is(err, context.Canceled) {
		t.Errorf("inner call ended with %v, want context.Canceled", err)
	}
}

func TestMaxTexts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		calls []int // texts per call, joining in this order
		want  []int // texts per inner call, sorted (groups are sent concurrently)
	}{
		{"reaching the limit sends at once", []int{3, 2}, []int{5}},
		{"overflow starts a new group", []int{3, 4, 1}, []int{3, 5}},
		{"overflow twice", []int{4, 4, 4, 1}, []int{4, 4, 5}},
		{"a call over the limit goes alone", []int{2, 7}, []int{2, 7}},
		{"a single call at the limit", []int{5}, []int{5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inner := newRecording(t, 32)
			c := New(inner, Options{Window: never, MaxTexts: 5})
			joined := make(chan struct{}, len(tc.calls))
			c.joined = func() { joined <- struct{}{} }
			results := make(chan error, len(tc.calls))
			for i, n := range tc.calls {
				texts := make([]string, n)
				for j := range texts {
					texts[j] = fmt.Sprintf("call %d text %d", i, j)
				}
				go func() {
					vs, err := c.Embed(context.Background(), texts)
					if err == nil && len(vs) != len(texts) {
						err = fmt.Errorf("%d vectors for %d texts", len(vs), len(texts))
					}
					results <- err
				}()
				recv(t, joined) // the calls join in this order

			}
			for range tc.calls {
				if err := recv(t, results); err != nil {
					t.Fatal(err)
				}
			}
			var sizes []int
			for _, call := range inner.callTexts() {
				sizes = append(sizes, len(call))
			}
			if slices.Sort(sizes); !slices.Equal(sizes, tc.want) {
				t.Errorf("inner call sizes = %v, want %v", sizes, tc.want)
			}
		})
	}
}

// TestWindowSendsALoneCall: with no other caller, the Window alone sends
// the group.
func TestWindowSendsALoneCall(t *testing.T) {
	t.Parallel()
	inner := newRecording(t, 32)
	c := New(inner, Options{Window: time.Millisecond})
	vs, err := c.Embed(context.Background(), []string{"ALONE"})
	if err != nil || len(vs) != 1 {
		t.Fatalf("Embed = %d vectors, %v", len(vs), err)
	}
}

func TestBadInputFailsOnlyItsCaller(t *testing.T) {
	t.Parallel()
	inner := newRecording(t, 32)
	c := New(inner, Options{Window: never, MaxCallers: 1})
	if _, err := c.Embed(context.Background(), []string{"ok", " "}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("blank text error = %v, want ErrInvalidArgument", err)
	}
	if n := len(inner.callTexts()); n != 0 {
		t.Errorf("inner called %d times for invalid input", n)
	}
	if _, err := c.Embed(context.Background(), []string{"ok"}); err != nil {
		t.Errorf("valid call after an invalid one: %v", err)
	}
}

func TestNilInner(t *testing.T) {
	t.Parallel()
	c := New(nil, Options{})
	if _, err := c.Embed(context.Background(), []string{"x"}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("Embed with no inner embedder: error = %v, want ErrInvalidArgument", err)
	}
	if c.Dims() != 0 || c.Model() != "" {
		t.Errorf("Dims, Model = %d, %q; want 0, empty", c.Dims(), c.Model())
	}
}

// BenchmarkTenReceipts reports inner calls per batch of ten concurrent
// receipts of 40 lines: 1 coalesced, 10 direct.
func BenchmarkTenReceipts(b *testing.B) {
	const receipts, lines = 10, 40
	batches := make([][]string, receipts)
	for i := range batches {
		for j := range lines {
			batches[i] = append(batches[i], fmt.Sprintf("RECEIPT %d ITEM %d 3.%02d", i, j, j))
		}
	}
	for _, bc := range []struct {
		name string
		wrap func(embed.Embedder) embed.Embedder
	}{
		{"direct", func(e embed.Embedder) embed.Embedder { return e }},
		{"coalesced-maxcallers", func(e embed.Embedder) embed.Embedder {
			return New(e, Options{Window: never, MaxCallers: receipts})
		}},
		{"coalesced-window", func(e embed.Embedder) embed.Embedder { return New(e, Options{}) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			inner := newRecording(b, 1536)
			e := bc.wrap(inner)
			for b.Loop() {
				var wg sync.WaitGroup
				for i := range receipts {
					wg.Go(func() {
						if _, err := e.Embed(context.Background(), batches[i]); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(len(inner.callTexts()))/float64(b.N), "inner-calls/op")
		})
	}
}

// --- helpers ---

func mustEmbed(t testing.TB, e embed.Embedder, texts []string) [][]float32 {
	t.Helper()
	vs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// recording is the hashed embedder, recording the texts of every call and
// signalling each call on called.
type recording struct {
	*hashed.Embedder
	called chan struct{}
	mu     sync.Mutex
	calls  [][]string
}

func newRecording(t testing.TB, dims int) *recording {
	t.Helper()
	h, err := hashed.New(dims)
	if err != nil {
		t.Fatal(err)
	}
	return &recording{Embedder: h, called: make(chan struct{}, 1000)}
}

func (r *recording) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	r.mu.Lock()
	r.calls = append(r.calls, slices.Clone(texts))
	r.mu.Unlock()
	select {
	case r.called <- struct{}{}:
	default:
	}
	return r.Embedder.Embed(ctx, texts)
}

func (r *recording) callTexts() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// blocking is the hashed embedder, holding each call until release is
// closed or the call's context ends (reported on ended).
type blocking struct {
	*hashed.Embedder
	started chan struct{}
	release chan struct{}
	ended   chan error
}

func newBlocking(t *testing.T) *blocking {
	t.Helper()
	h, err := hashed.New(32)
	if err != nil {
		t.Fatal(err)
	}
	return &blocking{Embedder: h, started: make(chan struct{}, 10), release: make(chan struct{}), ended: make(chan error, 10)}
}

func (b *blocking) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	b.started <- struct{}{}
	select {
	case <-b.release:
		return b.Embedder.Embed(ctx, texts)
	case <-ctx.Done():
		b.ended <- ctx.Err()
		return nil, ctx.Err()
	}
}

// stub answers every call with fixed vectors or an error.
type stub struct {
	vectors [][]float32
	err     error
}

func (s stub) Embed(context.Context, []string) ([][]float32, error) { return s.vectors, s.err }
func (s stub) Dims() int                                            { return 4 }
func (s stub) Model() string                                        { return "stub-4" }

// recv waits for a value, failing the test instead of hanging when a
// broken coalescer never sends one.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	return waitfor.Recv(t, "a call to return", ch)
}
