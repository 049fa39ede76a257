// Package coalesce merges concurrent Embed calls into fewer inner calls.
//
// The process worker handles up to ten receipts at once and each embeds its
// lines with one call; an OpenAI-compatible embedder takes up to 2048 inputs
// per request, so sending those calls together turns ten requests (and ten
// rate-limit tokens and round trips) into one. A call waits at most Window
// for company.
package coalesce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
)

// Defaults of Options.
const (
	// DefaultWindow is short against an embedding request (~100 ms and up)
	// yet long enough for receipts parsed together to meet.
	DefaultWindow = 20 * time.Millisecond
	// DefaultMaxTexts is the OpenAI embeddings API's input limit per
	// request, so a full group is still one request.
	DefaultMaxTexts = 2048
)

// ErrInnerMismatch means the inner embedder answered with a different number
// of vectors than texts; no caller's slice can be found, so all fail.
var ErrInnerMismatch = errors.New("inner embedder returned the wrong number of vectors")

// Options tune a Coalescer.
type Options struct {
	// Window is how long the first call of a group waits for others
	// before the group is sent (0 or less means DefaultWindow).
	Window time.Duration
	// MaxTexts sends a group as soon as it holds this many texts; a call
	// that would take the group past it starts a new group instead, so
	// groups stay within one request unless a single call is larger
	// (0 or less means DefaultMaxTexts).
	MaxTexts int
	// MaxCallers sends a group as soon as this many calls have joined it,
	// without waiting out the Window: set it to the number of records
	// processed concurrently. 0 means no limit.
	MaxCallers int
}

// Coalescer is an embed.Embedder that groups concurrent calls into one
// inner call. It is safe for concurrent use.
type Coalescer struct {
	inner embed.Embedder
	opts  Options

	mu      sync.Mutex
	pending *group // the group new calls join; nil when none is open

	// joined, when set (tests), is called after each call has joined a
	// group (and sent it, if the call filled it).
	joined func()
}

var _ embed.Embedder = (*Coalescer)(nil)

// call is one Embed call waiting in a group.
type call struct {
	texts []string
	done  chan result // buffered: the sender never waits for a caller that left
}

type result struct {
	vectors [][]float32
	err     error
}

// group is the calls sent in one inner call. Its fields are guarded by
// Coalescer.mu.
type group struct {
	calls  []*call
	texts  int
	timer  *time.Timer
	sent   bool
	cancel context.CancelFunc // ends the inner call; set when sent
	live   int                // calls still waiting once sent
}

// New returns a Coalescer sending grouped calls to inner.
func New(inner embed.Embedder, opts Options) *Coalescer {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxTexts <= 0 {
		opts.MaxTexts = DefaultMaxTexts
	}
	opts.MaxCallers = max(opts.MaxCallers, 0)
	return &Coalescer{inner: inner, opts: opts}
}

// Dims is the inner embedder's vector length.
func (c *Coalescer) Dims() int {
	if c.inner == nil {
		return 0
	}
	return c.inner.Dims()
}

// Model is the inner embedder's model.
func (c *Coalescer) Model() string {
	if c.inner == nil {
		return ""
	}
	return c.inner.Model()
}

// Embed joins the open group (or opens one) and returns this call's vectors
// once the group's inner call is done. Texts are checked before joining, so
// one caller's bad input never fails the others. If ctx ends first, Embed
// returns its error at once; the rest of the group carries on.
func (c *Coalescer) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if c.inner == nil {
		return nil, fmt.Errorf("coalesce embed: no inner embedder: %w", tally.ErrInvalidArgument)
	}
	if err := embed.ValidateTexts(texts); err != nil {
		return nil, fmt.Errorf("coalesce embed: %w", err)
	}
	if len(texts) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("coalesce embed: %w", err)
	}

	cl := &call{texts: texts, done: make(chan result, 1)}
	g := c.join(cl)
	if c.joined != nil {
		c.joined()
	}
	select {
	case r := <-cl.done:
		return r.vectors, r.err
	case <-ctx.Done():
		c.leave(g, cl)
		return nil, fmt.Errorf("coalesce embed: %w", ctx.Err())
	}
}

// join adds cl to the open group, sending groups that are full, and
// returns cl's group.
func (c *Coalescer) join(cl *call) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.pending; g != nil && g.texts+len(cl.texts) > c.opts.MaxTexts {
		c.sendLocked(g) // cl would overflow it: it goes in the next one
	}
	g := c.pending
	if g == nil {
		g = &group{}
		c.pending = g
		g.timer = time.AfterFunc(c.opts.Window, func() { c.expire(g) })
	}
	g.calls = append(g.calls, cl)
	g.texts += len(cl.texts)
	if g.texts >= c.opts.MaxTexts || (c.opts.MaxCallers > 0 && len(g.calls) >= c.opts.MaxCallers) {
		c.sendLocked(g)
	}
	return g
}

// expire sends g when its Window has passed, unless it already went.
func (c *Coalescer) expire(g *group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.sent {
		c.sendLocked(g)
	}
}

// sendLocked closes g to new calls and starts its inner call. The inner
// call gets its own context, ended only when every caller has left: one
// caller giving up must not fail the others.
func (c *Coalescer) sendLocked(g *group) {
	if c.pending == g {
		c.pending = nil
	}
	g.timer.Stop()
	g.sent = true
	g.live = len(g.calls)
	if g.live == 0 {
		return // everyone left before it went
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	texts := make([]string, 0, g.texts)
	for _, cl := range g.calls {
		texts = append(texts, cl.texts...)
	}
	go c.run(ctx, cancel, texts, g.calls)
}

// run makes the inner call of a group and hands each call its vectors.
func (c *Coalescer) run(ctx context.Context, cancel context.CancelFunc, texts []string, calls []*call) {
	defer cancel()
	vectors, err := c.inner.Embed(ctx, texts)
	if err == nil && len(vectors) != len(texts) {
		err = fmt.Errorf("%d vectors for %d texts: %w", len(vectors), len(texts), ErrInnerMismatch)
	}
	if err != nil {
		err = fmt.Errorf("coalesce embed (%d texts of %d calls): %w", len(texts), len(calls), err)
	}
	offset := 0
	for _, cl := range calls {
		r := result{err: err}
		if err == nil {
			end := offset + len(cl.texts)
			r.vectors = vectors[offset:end:end] // capped: appending cannot reach a neighbour's vectors
		}
		offset += len(cl.texts)
		cl.done <- r
	}
}

// leave takes a caller whose context ended out of g: out of the texts to
// send if g is still open, otherwise out of the callers the inner call is
// for, ending that call when nobody is left.
func (c *Coalescer) leave(g *group, cl *call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.sent {
		for i, other := range g.calls {
			if other == cl {
				g.calls = append(g.calls[:i], g.calls[i+1:]...)
				g.texts -= len(cl.texts)
				break
			}
		}
		if len(g.calls) == 0 {
			c.sendLocked(g) // sends nothing; closes g and stops its timer
		}
		return
	}
	g.live--
	if g.live == 0 && g.cancel != nil {
		g.cancel()
	}
}
