package ownership_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/ownership"
)

func TestAdopt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	// An image from before accounts: image item, job, claim, two
	// summaries (one needing review), and one image bob already owns.
	id, sum := ocrjob.NewID(), "ab"
	if err := ocrjob.CreateJob(ctx, tbl, ocrjob.Job{ImageID: id, JobID: ocrjob.NewID(), Bucket: "local", Key: "raw/a.png"}); err != nil {
		t.Fatal(err)
	}
	if err := tbl.TransactWrite(ctx, []items.Write{ocrjob.ImageWrite(ocrjob.Image{ImageID: id, Key: "raw/a.png", SHA256: sum, Added: time.Now()})}); err != nil {
		t.Fatal(err)
	}
	if _, err := ocrjob.ClaimSHA256(ctx, tbl, "", sum, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	for rid, status := range map[int]string{1: entities.SummaryValid, 2: entities.SummaryNeedsReview} {
		it, err := entities.ReceiptSummary{ImageID: id, ReceiptID: rid, Date: "2026-11-30", Status: status}.Item()
		if err != nil {
			t.Fatal(err)
		}
		if err := tbl.Put(ctx, it, items.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	bobs := ocrjob.NewID()
	if err := tbl.TransactWrite(ctx, []items.Write{ocrjob.ImageWrite(ocrjob.Image{ImageID: bobs, Key: "raw/b.png", SHA256: "cd", Owner: "bob", Added: time.Now()})}); err != nil {
		t.Fatal(err)
	}

	rep, err := ownership.Adopt(ctx, tbl, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if rep != (ownership.Report{Images: 1, Jobs: 1, Summaries: 2, Claims: 1, Skipped: 1}) {
		t.Errorf("Adopt = %+v", rep)
	}
	if owner, err := ocrjob.ImageOwner(ctx, tbl, id); err != nil || owner != "alice" {
		t.Errorf("image owner = %q, %v", owner, err)
	}
	if j, err := ocrjob.LatestJob(ctx, tbl, id); err != nil || j.Owner != "alice" {
		t.Errorf("job owner = %q, %v", j.Owner, err)
	}
	if got, err := ocrjob.LookupSHA256(ctx, tbl, "alice", sum); err != nil || got != id {
		t.Errorf("alice's claim = %q, %v", got, err)
	}
	if _, err := ocrjob.LookupSHA256(ctx, tbl, "", sum); err == nil {
		t.Error("the unowned claim is still there")
	}
	for _, c := range []struct {
		f    label.Filter
		want int
	}{
		{label.Filter{Owner: "alice"}, 2}, {label.Filter{}, 0},
		{label.Filter{Owner: "alice", Status: entities.SummaryNeedsReview}, 1}, {label.Filter{Status: entities.SummaryNeedsReview}, 0},
	} {
		p, err := label.List(ctx, tbl, c.f, 10, "")
		if err != nil || len(p.Summaries) != c.want {
			t.Errorf("List(%+v) = %d summaries, %v; want %d", c.f, len(p.Summaries), err, c.want)
		}
	}
	if owner, _ := ocrjob.ImageOwner(ctx, tbl, bobs); owner != "bob" {
		t.Errorf("bob's image now belongs to %q", owner)
	}
	again, err := ownership.Adopt(ctx, tbl, "alice")
	if err != nil || again != (ownership.Report{Skipped: 2}) {
		t.Errorf("second Adopt = %+v, %v; want nothing left to adopt", again, err)
	}
	if _, err := ownership.Adopt(ctx, tbl, "Not A Name"); err == nil {
		t.Error("Adopt with a bad user name succeeded")
	}
}
