// Package ownership hands receipts stored before accounts existed (they
// have no owner) to a user, so that turning accounts on does not hide a
// person's own history from them.
package ownership

import (
	"context"
	"errors"
	"fmt"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocrjob"
)

// Report counts what Adopt changed.
type Report struct {
	Images, Jobs, Summaries, Claims int
	// Skipped are images that already had an owner.
	Skipped int
}

// Adopt gives every image without an owner to user: the image item, its
// OCR jobs, its receipt summaries (moved into the user's list and review
// partitions) and its sha256 claim. It is idempotent and safe to run
// again after an interruption: each image's owner is written last.
func Adopt(ctx context.Context, t items.Table, user string) (Report, error) {
	var rep Report
	if err := auth.ValidateName("user", user); err != nil {
		return rep, err
	}
	imgs, err := items.QueryAll(ctx, t, items.Query{Index: "GSITYPE", PK: ocrjob.TypeImage})
	if err != nil {
		return rep, fmt.Errorf("adopt: list images: %w", err)
	}
	for _, im := range imgs {
		if owner, _ := im["owner"].(string); owner != "" {
			rep.Skipped++
			continue
		}
		id, _ := im["image_id"].(string)
		if id == "" {
			continue
		}
		if err := adoptImage(ctx, t, im, id, user, &rep); err != nil {
			return rep, fmt.Errorf("adopt image %s: %w", id, err)
		}
	}
	return rep, nil
}

func adoptImage(ctx context.Context, t items.Table, im items.Item, id, user string, rep *Report) error {
	part, err := items.QueryAll(ctx, t, items.Query{PK: im.Key().PK})
	if err != nil {
		return err
	}
	set := func(k items.Key, expr string, values map[string]any) error {
		values[":o"] = user
		_, err := t.Update(ctx, k, items.Update{Expr: expr, Cond: "attribute_exists(PK)", Values: values,
			Names: map[string]string{"#owner": "owner"}})
		return err
	}
	for _, it := range part {
		typ, _ := it[items.AttrType].(string)
		switch typ {
		case ocrjob.TypeJob:
			if err := set(it.Key(), "SET #owner = :o", map[string]any{}); err != nil {
				return err
			}
			rep.Jobs++
		case entities.TypeReceiptSummary:
			expr, values := "SET #owner = :o", map[string]any{}
			if pk, _ := it["GSI4PK"].(string); pk == entities.SummaryByDatePK {
				expr += ", GSI4PK = :by"
				values[":by"] = entities.OwnedPK(entities.SummaryByDatePK, user)
			}
			if pk, _ := it["GSI3PK"].(string); pk == entities.SummaryReviewPK {
				expr += ", GSI3PK = :rv"
				values[":rv"] = entities.OwnedPK(entities.SummaryReviewPK, user)
			}
			if err := set(it.Key(), expr, values); err != nil {
				return err
			}
			rep.Summaries++
		}
	}
	if sum, _ := im["sha256"].(string); sum != "" {
		old := ocrjob.SHA256Key("", sum)
		claim, err := t.Get(ctx, old)
		switch {
		case errors.Is(err, tally.ErrNotFound):
		case err != nil:
			return err
		case claim["image_id"] == id:
			if _, err := ocrjob.ClaimSHA256(ctx, t, user, sum, id, ocrjob.ParseTime(claim["created_at"])); err != nil {
				return err
			}
			if err := t.Delete(ctx, old, items.Cond{Expr: "image_id = :id", Values: map[string]any{":id": id}}); err != nil && !errors.Is(err, tally.ErrConditionFailed) {
				return err
			}
			rep.Claims++
		}
	}
	if err := set(im.Key(), "SET #owner = :o", map[string]any{}); err != nil {
		return err
	}
	rep.Images++
	return nil
}
