package label

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
)

// Pipeline is receipt understanding as the process stage and `tally
// label` run it: the rules' proposal, then the refiner's when one is
// configured, validated, then stored over the person's corrections.
type Pipeline struct {
	// Rules proposes first; required.
	Rules Labeller
	// Refiner, when set, improves the rules' proposal (an LLM). When it
	// fails or answers something invalid, the rules' proposal stands and
	// the reason is logged.
	Refiner Refiner
	// Log receives the refiner's failures; nil discards them.
	Log *slog.Logger
}

// Image labels every receipt of an image's entities. runID names the
// processing run (the same for a redelivered record): a receipt whose
// stored summary carries it is not labelled again, so a redelivery costs
// no LLM request and rewrites nothing. An empty runID always relabels.
func (pl Pipeline) Image(ctx context.Context, t items.Table, set entities.Set, at time.Time, runID func(receiptID int) string) ([]entities.Understanding, error) {
	var out []entities.Understanding
	for _, rc := range set.Receipts {
		id := ""
		if runID != nil {
			id = runID(rc.ReceiptID)
		}
		u, err := pl.Receipt(ctx, t, FromSet(set, rc.ReceiptID), at, id)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// Receipt labels one receipt (see Image).
func (pl Pipeline) Receipt(ctx context.Context, t items.Table, r Receipt, at time.Time, runID string) (entities.Understanding, error) {
	prev, ok, err := Stored(ctx, t, r.ImageID, r.ReceiptID)
	if err != nil {
		return entities.Understanding{}, err
	}
	if ok && runID != "" && prev.Summary.RunID == runID {
		return prev, nil
	}
	p, err := pl.Propose(ctx, r)
	if err != nil {
		return entities.Understanding{}, err
	}
	u, err := applyOver(ctx, t, r, p, at, runID, prev)
	if err != nil {
		return entities.Understanding{}, fmt.Errorf("label receipt %d: %w", r.ReceiptID, err)
	}
	return u, nil
}

// Propose is the proposal for one receipt without storing it: the rules',
// refined when a refiner is set and its answer is valid.
func (pl Pipeline) Propose(ctx context.Context, r Receipt) (Proposal, error) {
	p, err := pl.Rules.Label(ctx, r)
	if err != nil {
		return Proposal{}, fmt.Errorf("label receipt %d: %w", r.ReceiptID, err)
	}
	if err := Validate(r, &p); err != nil {
		// A rules bug must not fail the record: the receipt is stored
		// with nothing proposed and the reason, for a person to see.
		if pl.Log != nil {
			pl.Log.Error("rules proposal invalid", "image_id", r.ImageID, "receipt_id", r.ReceiptID, "err", err)
		}
		p = Proposal{Source: p.Source, Doubts: []string{"labeller: its proposal was invalid: " + err.Error()}}
	}
	if pl.Refiner == nil || len(r.Words) == 0 {
		return p, nil
	}
	refined, err := pl.Refiner.Refine(ctx, r, p)
	if err == nil {
		err = Validate(r, &refined)
	}
	if err != nil {
		if ctx.Err() != nil {
			return Proposal{}, ctx.Err()
		}
		if pl.Log != nil {
			pl.Log.Warn("LLM labelling failed; keeping the rules' labels", "image_id", r.ImageID, "receipt_id", r.ReceiptID, "err", err)
		}
		return p, nil
	}
	return refined, nil
}
