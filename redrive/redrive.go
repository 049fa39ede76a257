// Package redrive moves messages from a dead-letter queue back to the
// queue they came from, as `tally redrive` does: filtered by the failure
// reason the stage recorded, bounded, and safe to interrupt and run again.
//
// Each message is sent to the source queue before it is deleted from the
// dead-letter queue, and a ledger in the item store (one item per
// dead-letter message id) records that it was sent, so that a run
// interrupted between the send and the delete does not send it twice when
// run again. The one window left is a crash between the send and the
// ledger write; Tally's stages are idempotent, so a message delivered
// twice is harmless there.
package redrive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/queue"
)

// Attributes a stage writes on a dead-lettered message, and the one a
// redrive adds to the message it sends.
const (
	AttrFailureReason = "failure_reason"
	AttrRedrivenFrom  = "redriven_from"
)

// ledgerTTL is how long the ledger remembers a redriven message: far
// longer than any dead-letter queue keeps one.
const ledgerTTL = 30 * 24 * time.Hour

// hold is how long a receive hides the messages a run looks at; the ones
// it does not move are made visible again when it ends.
const hold = 5 * time.Minute

// Config is one redrive.
type Config struct {
	// From is the dead-letter queue, To the queue its messages go back to.
	From, To queue.Queue
	// Items holds the ledger.
	Items items.Table
	// Reason, when set, moves only messages whose failure_reason contains
	// it (case-insensitive).
	Reason string
	// Max bounds the messages moved; 0 means all.
	Max int
	// DryRun counts what would move and moves nothing.
	DryRun bool
}

// Report counts a redrive.
type Report struct {
	// Moved were sent to the source queue and deleted from the DLQ (in a
	// dry run: would have been).
	Moved int
	// Resumed had been sent by an earlier, interrupted run: only deleted.
	Resumed int
	// Skipped did not match the reason filter (left in place).
	Skipped int
	// Reasons counts the moved (or, in a dry run, movable) messages by
	// failure reason.
	Reasons map[string]int
	// Newest is, per failure reason, the most recently sent message counted
	// in Reasons: the example an operator reads first.
	Newest map[string]queue.Message
}

// count records one moved (or movable) message under its reason.
func (r *Report) count(why string, m queue.Message) {
	r.Reasons[why]++
	if old, ok := r.Newest[why]; !ok || m.SentAt.After(old.SentAt) {
		r.Newest[why] = m
	}
}

func (r Report) String() string {
	return fmt.Sprintf("moved %d, finished %d left by an earlier run, left %d that did not match", r.Moved, r.Resumed, r.Skipped)
}

// Run moves the messages. It stops when the dead-letter queue has nothing
// more to show, when Max is reached, or when ctx ends (returning what it
// did and ctx's error). Every message it looked at and did not move is
// made visible again before it returns.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.From == nil || cfg.To == nil || cfg.Items == nil {
		return Report{}, fmt.Errorf("redrive: From, To and Items are required: %w", tally.ErrInvalidArgument)
	}
	if cfg.Max < 0 {
		return Report{}, fmt.Errorf("redrive: max %d is negative: %w", cfg.Max, tally.ErrInvalidArgument)
	}
	rep := Report{Reasons: map[string]int{}, Newest: map[string]queue.Message{}}
	var held []string // receipt handles to make visible again
	defer func() {
		release(context.WithoutCancel(ctx), cfg.From, held)
	}()
	seen := map[string]bool{}
	reason := strings.ToLower(cfg.Reason)
	for cfg.Max == 0 || rep.Moved+rep.Resumed < cfg.Max {
		msgs, err := cfg.From.Receive(ctx, queue.ReceiveOptions{Max: queue.MaxBatch, Visibility: hold})
		if err != nil {
			return rep, fmt.Errorf("redrive: receive from %s: %w", cfg.From.Name(), err)
		}
		fresh := 0
		for _, m := range msgs {
			if seen[m.ID] {
				held = append(held, m.ReceiptHandle)
				continue
			}
			seen[m.ID] = true
			fresh++
			why := m.Attributes[AttrFailureReason]
			full := cfg.Max > 0 && rep.Moved+rep.Resumed >= cfg.Max
			if full || (reason != "" && !strings.Contains(strings.ToLower(why), reason)) {
				held = append(held, m.ReceiptHandle)
				if !full {
					rep.Skipped++
				}
				continue
			}
			if cfg.DryRun {
				held = append(held, m.ReceiptHandle)
				rep.Moved++
				rep.count(why, m)
				continue
			}
			resumed, err := move(ctx, cfg, m)
			if err != nil {
				held = append(held, m.ReceiptHandle)
				return rep, err
			}
			if resumed {
				rep.Resumed++
			} else {
				rep.Moved++
			}
			rep.count(why, m)
		}
		if fresh == 0 {
			return rep, nil
		}
	}
	return rep, nil
}

// move sends one message back (unless the ledger says an earlier run did)
// and deletes it from the dead-letter queue.
func move(ctx context.Context, cfg Config, m queue.Message) (resumed bool, err error) {
	key := items.Key{PK: "REDRIVE#" + cfg.From.Name(), SK: "MSG#" + m.ID}
	_, err = cfg.Items.Get(ctx, key)
	switch {
	case err == nil:
		resumed = true
	case errors.Is(err, tally.ErrNotFound):
		attrs := map[string]string{AttrRedrivenFrom: m.ID}
		for k, v := range m.Attributes {
			if k != AttrFailureReason {
				attrs[k] = v
			}
		}
		res, err := cfg.To.SendBatch(ctx, []queue.SendEntry{{ID: "0", Body: m.Body, Attributes: attrs}})
		if err == nil && len(res) == 1 {
			err = res[0].Err
		}
		if err != nil {
			return false, fmt.Errorf("redrive: send %s to %s: %w", m.ID, cfg.To.Name(), err)
		}
		it := items.Item{items.AttrPK: key.PK, items.AttrSK: key.SK, items.AttrType: "REDRIVE",
			"to": cfg.To.Name(), "message_id": res[0].MessageID, items.AttrTTL: time.Now().Add(ledgerTTL).Unix()}
		if err := cfg.Items.Put(ctx, it, items.Cond{}); err != nil {
			return false, fmt.Errorf("redrive: record %s: %w", m.ID, err)
		}
	default:
		return false, fmt.Errorf("redrive: ledger: %w", err)
	}
	if err := queue.Delete(ctx, cfg.From, m.ReceiptHandle); err != nil {
		return resumed, fmt.Errorf("redrive: delete %s from %s: %w", m.ID, cfg.From.Name(), err)
	}
	return resumed, nil
}

// release makes held messages visible again.
func release(ctx context.Context, q queue.Queue, handles []string) {
	for start := 0; start < len(handles); start += queue.MaxBatch {
		end := min(start+queue.MaxBatch, len(handles))
		changes := make([]queue.VisibilityChange, 0, end-start)
		for _, h := range handles[start:end] {
			changes = append(changes, queue.VisibilityChange{ReceiptHandle: h})
		}
		_, _ = q.ChangeVisibilityBatch(ctx, changes)
	}
}
