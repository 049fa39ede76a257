package compaction

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

// Run states, both of the whole run (status) and of each collection
// ({coll}_state).
const (
	StatusPending   = "PENDING"
	StatusCompleted = "COMPLETED"
)

// Item layout of a CompactionRun (DESIGN §3).
const (
	// TypeRun is the TYPE of a CompactionRun item.
	TypeRun = "COMPACTION_RUN"
	// PendingIndex is the GSI that lists pending runs by creation time; a
	// run is in it only while pending (a sparse index), so the rescuer finds
	// stale runs without scanning the table.
	PendingIndex = "GSI3"
	// PendingPK is the GSI3PK value every pending run carries.
	PendingPK = "COMPACTION_RUN#PENDING"

	attrGSIPK       = "GSI3PK"
	attrGSISK       = "GSI3SK"
	attrStatus      = "status"
	attrRunID       = "run_id"
	attrImageID     = "image_id"
	attrReceiptID   = "receipt_id"
	attrCollections = "collections"
	attrCreatedAt   = "created_at"
	attrCompletedAt = "completed_at"
	attrRescueCount = "rescue_count"
	attrRescuedAt   = "rescued_at"
)

// timeFormat is RFC 3339 with a fixed nine-digit fraction in UTC. Unlike
// time.RFC3339Nano (which trims trailing zeros) it sorts as text in time
// order, which GSI3SK needs; time.RFC3339Nano still parses it.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// Run is a CompactionRun: one processing run's vector deltas on their way
// into the collections' published versions.
type Run struct {
	RunID       string
	ImageID     string
	ReceiptID   int
	Collections []string
	// Status is StatusPending until every collection is complete.
	Status string
	// CreatedAt orders pending runs for the rescuer; CreateRun fills it in
	// when zero.
	CreatedAt   time.Time
	CompletedAt time.Time
	// States holds each collection's progress.
	States      map[string]CollectionState
	RescueCount int
	RescuedAt   time.Time
}

// CollectionState is one collection's part of a run.
type CollectionState struct {
	State   string // StatusPending or StatusCompleted
	Version int64  // the version that merged the run's delta
	Merged  int    // records the delta upserted
}

// Message is the compaction message for the run.
func (r Run) Message() Message {
	return Message{RunID: r.RunID, ImageID: r.ImageID, ReceiptID: r.ReceiptID, Collections: r.Collections}
}

// RunKey is the item key of a CompactionRun: PK=IMAGE#{image},
// SK=RECEIPT#{receipt:05d}#COMPACTION_RUN#{run}.
func RunKey(imageID string, receiptID int, runID string) items.Key {
	return items.Key{PK: "IMAGE#" + imageID, SK: fmt.Sprintf("RECEIPT#%05d#COMPACTION_RUN#%s", receiptID, runID)}
}

func stateAttr(coll string) string   { return coll + "_state" }
func versionAttr(coll string) string { return coll + "_version" }
func mergedAttr(coll string) string  { return coll + "_merged" }

// CreateRun records a pending run, visible to the rescuer through
// PendingIndex. It is idempotent: when the run exists already (a
// redelivered processing message) the stored one is kept as it is.
func CreateRun(ctx context.Context, t items.Table, r Run) error {
	if err := r.Message().Validate(); err != nil {
		return fmt.Errorf("create compaction run: %w", err)
	}
	created := r.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	k := RunKey(r.ImageID, r.ReceiptID, r.RunID)
	colls := make([]any, len(r.Collections))
	for i, c := range r.Collections {
		colls[i] = c
	}
	it := items.Item{
		items.AttrPK: k.PK, items.AttrSK: k.SK, items.AttrType: TypeRun,
		attrRunID: r.RunID, attrImageID: r.ImageID, attrReceiptID: r.ReceiptID,
		attrCollections: colls, attrStatus: StatusPending,
		attrCreatedAt: formatTime(created),
		attrGSIPK:     PendingPK, attrGSISK: formatTime(created),
	}
	for _, c := range r.Collections {
		it[stateAttr(c)] = StatusPending
	}
	err := t.Put(ctx, it, items.Cond{Expr: "attribute_not_exists(PK)"})
	if err != nil && !errors.Is(err, tally.ErrConditionFailed) {
		return fmt.Errorf("create compaction run %s (image %s, receipt %d): %w", r.RunID, r.ImageID, r.ReceiptID, err)
	}
	return nil
}

// GetRun reads a run; tally.ErrNotFound if there is none.
func GetRun(ctx context.Context, t items.Table, imageID string, receiptID int, runID string) (Run, error) {
	it, err := t.Get(ctx, RunKey(imageID, receiptID, runID))
	if err != nil {
		return Run{}, fmt.Errorf("get compaction run %s (image %s, receipt %d): %w", runID, imageID, receiptID, err)
	}
	return runFromItem(it)
}

// ErrMalformedRun means a stored CompactionRun item is missing fields or has
// the wrong types; the compactor refuses to guess.
var ErrMalformedRun = errors.New("malformed compaction run item")

func runFromItem(it items.Item) (Run, error) {
	var r Run
	r.RunID, _ = it[attrRunID].(string)
	r.ImageID, _ = it[attrImageID].(string)
	r.Status, _ = it[attrStatus].(string)
	rid, ok := items.Int64Of(it[attrReceiptID])
	r.ReceiptID = int(rid)
	list, _ := it[attrCollections].([]any)
	for _, v := range list {
		if s, isStr := v.(string); isStr {
			r.Collections = append(r.Collections, s)
		}
	}
	if !ok || r.RunID == "" || r.ImageID == "" || len(r.Collections) == 0 || len(list) != len(r.Collections) ||
		(r.Status != StatusPending && r.Status != StatusCompleted) {
		return Run{}, fmt.Errorf("run item %v/%v: %w", it[items.AttrPK], it[items.AttrSK], ErrMalformedRun)
	}
	r.CreatedAt = parseTime(it[attrCreatedAt])
	r.CompletedAt = parseTime(it[attrCompletedAt])
	r.RescuedAt = parseTime(it[attrRescuedAt])
	n, _ := items.Int64Of(it[attrRescueCount])
	r.RescueCount = int(n)
	r.States = make(map[string]CollectionState, len(r.Collections))
	for _, c := range r.Collections {
		var cs CollectionState
		cs.State, _ = it[stateAttr(c)].(string)
		cs.Version, _ = items.Int64Of(it[versionAttr(c)])
		m, _ := items.Int64Of(it[mergedAttr(c)])
		cs.Merged = int(m)
		r.States[c] = cs
	}
	return r, nil
}

// complete reports whether every collection of the run is complete.
func (r Run) complete() bool {
	for _, c := range r.Collections {
		if r.States[c].State != StatusCompleted {
			return false
		}
	}
	return true
}

func parseTime(v any) time.Time {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// markCollection records that the run's delta in coll was merged into
// version with merged records. It SETs fixed values, so a redelivered
// message writes the same thing again and never double counts. It returns
// the run as stored afterwards.
func markCollection(ctx context.Context, t items.Table, k items.Key, coll string, version int64, merged int) (Run, error) {
	it, err := t.Update(ctx, k, items.Update{
		Expr: "SET #st = :done, #ver = :ver, #merged = :merged",
		Cond: "attribute_exists(PK)",
		Names: map[string]string{
			"#st": stateAttr(coll), "#ver": versionAttr(coll), "#merged": mergedAttr(coll),
		},
		Values: map[string]any{":done": StatusCompleted, ":ver": version, ":merged": merged},
	})
	if err != nil {
		if errors.Is(err, tally.ErrConditionFailed) {
			err = fmt.Errorf("run vanished: %w", tally.ErrNotFound)
		}
		return Run{}, fmt.Errorf("mark %s of run %s complete: %w", coll, k.SK, err)
	}
	return runFromItem(it)
}

// completeRun sets the run COMPLETED and takes it out of the pending index,
// on condition that it is still pending and every collection is complete,
// so completed_at is written once.
func completeRun(ctx context.Context, t items.Table, k items.Key, r Run, now time.Time) error {
	cond := "attribute_exists(PK) AND #status = :pending"
	names := map[string]string{"#status": attrStatus, "#completed": attrCompletedAt, "#gpk": attrGSIPK, "#gsk": attrGSISK}
	values := map[string]any{":pending": StatusPending, ":done": StatusCompleted, ":now": formatTime(now)}
	for i, c := range r.Collections {
		n := fmt.Sprintf("#c%d", i)
		names[n] = stateAttr(c)
		cond += " AND " + n + " = :done"
	}
	_, err := t.Update(ctx, k, items.Update{
		Expr:   "SET #status = :done, #completed = :now REMOVE #gpk, #gsk",
		Cond:   cond,
		Names:  names,
		Values: values,
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, tally.ErrConditionFailed) {
		return fmt.Errorf("complete run %s: %w", k.SK, err)
	}
	// Someone else completed it meanwhile (a duplicate message), or the
	// stored run differs from what we read: look again.
	it, gerr := t.Get(ctx, k)
	if gerr != nil {
		return fmt.Errorf("complete run %s: %w", k.SK, gerr)
	}
	cur, perr := runFromItem(it)
	if perr != nil {
		return fmt.Errorf("complete run %s: %w", k.SK, perr)
	}
	if cur.Status == StatusCompleted {
		return nil
	}
	return fmt.Errorf("complete run %s: collections changed while completing: %w", k.SK, err)
}
