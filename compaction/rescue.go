package compaction

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/queue"
)

// MaxRescues is how often one run is re-sent before the rescuer gives up
// on it and logs it for an operator: a run whose delta was never written
// fails every time, and re-sending it forever would only fill the
// dead-letter queue. Writing the run's delta again and re-sending its
// message (what a redelivered processing message does) still completes it.
const MaxRescues = 10

// Rescue re-sends the message of every run still pending that was created
// before now-olderThan, so a run whose message was lost (a crash between
// CreateRun and Enqueue, a message dead-lettered by a transient fault) is
// never stuck: the compactor merges every registered delta anyway, so the
// re-sent message completes it on the next batch. Each rescue increments
// rescue_count and sets rescued_at; a run rescued within olderThan is left
// alone, and a conditional claim keeps two rescuers from both re-sending
// it. It returns how many runs it re-sent.
func Rescue(ctx context.Context, t items.Table, q queue.Queue, olderThan time.Duration, now time.Time) (int, error) {
	return rescue(ctx, t, q, olderThan, now, slog.Default())
}

func rescue(ctx context.Context, t items.Table, q queue.Queue, olderThan time.Duration, now time.Time, log *slog.Logger) (int, error) {
	if t == nil || q == nil || olderThan < 0 {
		return 0, fmt.Errorf("rescue compaction runs (older than %v): table and queue required, age ≥ 0: %w", olderThan, tally.ErrInvalidArgument)
	}
	cutoff := now.Add(-olderThan)
	query := pendingBefore(cutoff)
	sent := 0
	for {
		page, err := t.Query(ctx, query)
		if err != nil {
			return sent, fmt.Errorf("rescue compaction runs: query pending: %w", err)
		}
		for _, it := range page.Items {
			ok, err := rescueOne(ctx, t, q, it, cutoff, now, log)
			if err != nil {
				return sent, err
			}
			if ok {
				sent++
			}
		}
		if page.NextToken == "" {
			return sent, nil
		}
		query.Token = page.NextToken
	}
}

// rescueOne claims one pending run (conditionally on the rescue state it
// read) and re-sends its message.
func rescueOne(ctx context.Context, t items.Table, q queue.Queue, it items.Item, cutoff, now time.Time, log *slog.Logger) (bool, error) {
	k := it.Key()
	r, err := runFromItem(it)
	if err != nil {
		log.Error("compaction run cannot be rescued", "key", k.PK+"/"+k.SK, "err", err)
		return false, nil
	}
	if err := r.Message().Validate(); err != nil {
		log.Error("compaction run cannot be rescued", "run", r.RunID, "err", err)
		return false, nil
	}
	if r.Status == StatusCompleted {
		// A stale index entry; completion removes it in the same write,
		// so this is only a leftover of a hand edit. Tidy it.
		_, err := t.Update(ctx, k, items.Update{
			Expr: "REMOVE #gpk, #gsk", Cond: "#status = :done",
			Names:  map[string]string{"#gpk": attrGSIPK, "#gsk": attrGSISK, "#status": attrStatus},
			Values: map[string]any{":done": StatusCompleted},
		})
		if err != nil && !errors.Is(err, tally.ErrConditionFailed) {
			return false, fmt.Errorf("rescue run %s: tidy index: %w", r.RunID, err)
		}
		return false, nil
	}
	if !r.RescuedAt.IsZero() && !r.RescuedAt.Before(cutoff) {
		return false, nil // re-sent recently; give that message its chance
	}
	if r.RescueCount >= MaxRescues {
		log.Error("compaction run still pending after the maximum rescues; needs an operator (rewrite its delta and re-send)",
			"run", r.RunID, "image", r.ImageID, "receipt", r.ReceiptID, "rescues", r.RescueCount, "created_at", r.CreatedAt)
		return false, nil
	}
	cond := "#status = :pending AND attribute_not_exists(#at)"
	values := map[string]any{":pending": StatusPending, ":one": 1, ":now": formatTime(now)}
	if prev, ok := it[attrRescuedAt].(string); ok {
		cond = "#status = :pending AND #at = :prev"
		values[":prev"] = prev
	}
	_, err = t.Update(ctx, k, items.Update{
		Expr:   "SET #at = :now ADD #count :one",
		Cond:   cond,
		Names:  map[string]string{"#status": attrStatus, "#at": attrRescuedAt, "#count": attrRescueCount},
		Values: values,
	})
	if errors.Is(err, tally.ErrConditionFailed) {
		return false, nil // completed, or another rescuer claimed it
	}
	if err != nil {
		return false, fmt.Errorf("rescue run %s: claim: %w", r.RunID, err)
	}
	if err := Enqueue(ctx, q, r.Message()); err != nil {
		// The claim stands, so this run waits one more period; it is
		// retried then, not lost.
		return false, fmt.Errorf("rescue run %s: %w", r.RunID, err)
	}
	log.Warn("compaction run rescued: re-sent its message", "run", r.RunID, "image", r.ImageID,
		"receipt", r.ReceiptID, "created_at", r.CreatedAt, "rescues", r.RescueCount+1)
	return true, nil
}

// pendingBefore queries the runs still pending that were created before
// cutoff, oldest first.
func pendingBefore(cutoff time.Time) items.Query {
	return items.Query{Index: PendingIndex, PK: PendingPK, SK: items.SKCond{Op: items.SKLess, Value: formatTime(cutoff)}}
}

// Overdue lists up to limit runs pending since before now-olderThan, the
// ones the rescuer should have re-sent; more is true when there are others.
func Overdue(ctx context.Context, t items.Table, olderThan time.Duration, now time.Time, limit int) (runs []Run, more bool, err error) {
	q := pendingBefore(now.Add(-olderThan))
	q.Limit = limit
	page, err := t.Query(ctx, q)
	if err != nil {
		return nil, false, fmt.Errorf("overdue compaction runs: %w", err)
	}
	for _, it := range page.Items {
		r, err := runFromItem(it)
		if err != nil {
			return nil, false, fmt.Errorf("overdue compaction runs: %w", err)
		}
		runs = append(runs, r)
	}
	return runs, page.NextToken != "", nil
}
