package vector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/vector/segment"
)

// Delta is a registered delta: one processing run's writes to a collection.
type Delta struct {
	Collection string
	RunID      string
	// Seq orders deltas: a delta registered later has a larger Seq, and its
	// writes win over earlier ones for the same id.
	Seq     int64
	Key     string // blob key of its segment
	Upserts int
	Deletes int
	// AppliedVersion is the version that merged it; 0 while pending.
	AppliedVersion int64
	// Quarantined, when set, is why the compactor could not read the
	// delta's segment (corrupt or missing). It stays registered and
	// pending — never silently dropped — and writing the same run again
	// repairs it.
	Quarantined  string
	RegisteredAt time.Time
}

// WriteDelta writes one run's upserts and deletes to a collection and
// registers them, after which every reader sees them. It is idempotent per
// (collection, runID): writing the same run again rewrites the same segment
// and keeps the first registration, so a redelivered message never doubles
// a vector. An id both upserted and deleted in one call is invalid.
// Vectors are stored scaled to unit length (a zero vector stays zero).
func (s *Store) WriteDelta(ctx context.Context, coll, runID string, upserts []Record, deletes []string) (Delta, error) {
	if err := ValidateCollection(coll); err != nil {
		return Delta{}, err
	}
	if err := ValidateRunID(runID); err != nil {
		return Delta{}, err
	}
	if len(upserts) == 0 && len(deletes) == 0 {
		return Delta{}, fmt.Errorf("delta %s/%s: no upserts and no deletes: %w", coll, runID, tally.ErrInvalidArgument)
	}
	recs := make([]segment.Record, len(upserts))
	for i, r := range upserts {
		// Stored as unit vectors: scores are then cosine similarities, and
		// the graphs (built for unit vectors) stay navigable whatever
		// scale an embedder returns.
		v := r.Vector
		if len(v) == s.dims {
			v = normalized(v)
		}
		recs[i] = segment.Record{ID: r.ID, Vector: v, Meta: r.Meta}
	}
	var buf bytes.Buffer
	buf.Grow(segmentSizeHint(s.dims, recs, deletes))
	if _, err := segment.Write(&buf, s.dims, recs, deletes, segment.BuildOptions{}); err != nil {
		return Delta{}, fmt.Errorf("delta %s/%s: %w", coll, runID, err)
	}
	// The key carries a content hash: cached copies are keyed by blob key
	// and trusted forever, so a key must never name two different contents.
	sum := sha256.Sum256(buf.Bytes())
	key := s.deltaBlobKey(coll, runID+"-"+hex.EncodeToString(sum[:6]))
	if _, err := s.blob.Put(ctx, key, &buf, blob.PutOptions{ContentType: segmentContentType}); err != nil {
		return Delta{}, fmt.Errorf("delta %s/%s: write segment: %w", coll, runID, err)
	}
	d := Delta{Collection: coll, RunID: runID, Key: key, Upserts: len(upserts), Deletes: len(deletes)}
	return s.register(ctx, d)
}

const segmentContentType = "application/vnd.tally.segment"

// register gives the delta the next sequence number, atomically with its
// registry item and its run marker: the counter update is conditional on the
// value read, so registrations are totally ordered and a delta is visible to
// the compactor exactly when its number is taken.
func (s *Store) register(ctx context.Context, d Delta) (Delta, error) {
	backoff := 2 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if it, err := s.items.Get(ctx, runKey(d.Collection, d.RunID)); err == nil {
			if prev, ok := collectedDelta(d.Collection, it); ok {
				// Applied and collected long ago: nothing to register.
				if err := s.blob.Delete(ctx, d.Key); err != nil {
					s.log.Warn("delete duplicate delta segment", "key", d.Key, "err", err)
				}
				return prev, nil
			}
			seq, _ := asInt64(it["seq"])
			prev, err := s.deltaBySeq(ctx, d.Collection, seq)
			if err != nil {
				return prev, err
			}
			if prev.Quarantined == "" {
				// Already registered: the first registration stands.
				if prev.Key != d.Key {
					if err := s.blob.Delete(ctx, d.Key); err != nil {
						s.log.Warn("delete duplicate delta segment", "key", d.Key, "err", err)
					}
				}
				return prev, nil
			}
			// The registered segment was unreadable: point the delta at
			// the new one and lift the quarantine.
			if _, err := s.items.Update(ctx, deltaKey(d.Collection, seq), items.Update{
				Expr:   "SET #key = :key REMOVE quarantined",
				Cond:   "attribute_exists(PK) AND attribute_not_exists(applied_version)",
				Names:  map[string]string{"#key": "key"},
				Values: map[string]any{":key": d.Key},
			}); err != nil {
				return Delta{}, fmt.Errorf("register delta %s/%s: lift quarantine: %w", d.Collection, d.RunID, err)
			}
			prev.Quarantined, prev.Key = "", d.Key
			s.log.Info("vector delta repaired", "collection", d.Collection, "run", d.RunID, "seq", seq)
			return prev, nil
		} else if !errors.Is(err, tally.ErrNotFound) {
			return Delta{}, fmt.Errorf("register delta %s/%s: %w", d.Collection, d.RunID, err)
		}
		cur := int64(0)
		if it, err := s.items.Get(ctx, seqKey(d.Collection)); err == nil {
			cur, _ = asInt64(it["seq"])
		} else if !errors.Is(err, tally.ErrNotFound) {
			return Delta{}, fmt.Errorf("register delta %s/%s: read sequence: %w", d.Collection, d.RunID, err)
		}
		next := cur + 1
		now := s.now().UTC()
		seqCond := items.Cond{Expr: "#seq = :cur", Names: map[string]string{"#seq": "seq"}, Values: map[string]any{":cur": cur}}
		if cur == 0 {
			seqCond = items.Cond{Expr: "attribute_not_exists(PK)"}
		}
		seqItem := items.Item{"PK": seqKey(d.Collection).PK, "SK": seqKey(d.Collection).SK, "TYPE": typeSeq, "seq": next}
		k := deltaKey(d.Collection, next)
		reg := items.Item{
			"PK": k.PK, "SK": k.SK, "TYPE": typeDelta,
			"collection": d.Collection, "run_id": d.RunID, "seq": next, "key": d.Key,
			"upserts": d.Upserts, "deletes": d.Deletes, "registered_at": now.Format(time.RFC3339Nano),
		}
		rk := runKey(d.Collection, d.RunID)
		marker := items.Item{"PK": rk.PK, "SK": rk.SK, "TYPE": typeDeltaRun, "seq": next, "run_id": d.RunID}
		notExists := items.Cond{Expr: "attribute_not_exists(PK)"}
		err := s.items.TransactWrite(ctx, []items.Write{
			items.PutWrite(seqItem, seqCond),
			items.PutWrite(reg, notExists),
			items.PutWrite(marker, notExists),
		})
		if err == nil {
			d.Seq, d.RegisteredAt = next, now
			return d, nil
		}
		var tx *items.TxCanceledError
		if !errors.As(err, &tx) {
			return Delta{}, fmt.Errorf("register delta %s/%s: %w", d.Collection, d.RunID, err)
		}
		// Lost the race for the counter (or the run was registered
		// meanwhile, which the next loop sees): try again.
		if attempt > 200 {
			return Delta{}, fmt.Errorf("register delta %s/%s: sequence contention after %d attempts: %w", d.Collection, d.RunID, attempt, err)
		}
		select {
		case <-ctx.Done():
			return Delta{}, fmt.Errorf("register delta %s/%s: %w", d.Collection, d.RunID, ctx.Err())
		case <-time.After(backoff):
		}
		if backoff < 100*time.Millisecond {
			backoff *= 2
		}
	}
}

func (s *Store) deltaBySeq(ctx context.Context, coll string, seq int64) (Delta, error) {
	it, err := s.items.Get(ctx, deltaKey(coll, seq))
	if err != nil {
		return Delta{}, fmt.Errorf("read delta %s #%d: %w", coll, seq, err)
	}
	return deltaFromItem(it)
}

func deltaFromItem(it items.Item) (Delta, error) {
	d := Delta{}
	d.Collection, _ = it["collection"].(string)
	d.RunID, _ = it["run_id"].(string)
	d.Key, _ = it["key"].(string)
	seq, ok := asInt64(it["seq"])
	if !ok || d.Key == "" {
		return Delta{}, fmt.Errorf("delta item %s/%s is malformed: %w", it[items.AttrPK], it[items.AttrSK], ErrCorruptState)
	}
	d.Seq = seq
	up, _ := asInt64(it["upserts"])
	del, _ := asInt64(it["deletes"])
	d.Upserts, d.Deletes = int(up), int(del)
	d.AppliedVersion, _ = asInt64(it["applied_version"])
	d.Quarantined, _ = it["quarantined"].(string)
	if ts, ok := it["registered_at"].(string); ok {
		d.RegisteredAt, _ = time.Parse(time.RFC3339Nano, ts)
	}
	return d, nil
}

// Deltas lists the collection's registered deltas in sequence order: those
// not yet applied and not quarantined when pendingOnly, otherwise every one
// still registered.
// A reader of version v needs those with AppliedVersion 0 or > v.
func (s *Store) Deltas(ctx context.Context, coll string, pendingOnly bool, limit int) ([]Delta, error) {
	q := items.Query{PK: collectionPK(coll), SK: items.SKCond{Op: items.SKBeginsWith, Value: "DELTA#"}}
	var out []Delta
	for {
		page, err := s.items.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("list deltas of %s: %w", coll, err)
		}
		for _, it := range page.Items {
			d, err := deltaFromItem(it)
			if err != nil {
				return nil, err
			}
			if pendingOnly && (d.AppliedVersion != 0 || d.Quarantined != "") {
				continue
			}
			out = append(out, d)
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
		if page.NextToken == "" {
			return out, nil
		}
		q.Token = page.NextToken
	}
}

// quarantine marks a pending delta unreadable so compaction goes on without
// it; the reason is kept on the item for operators.
func (s *Store) quarantine(ctx context.Context, d Delta, reason error) error {
	_, err := s.items.Update(ctx, deltaKey(d.Collection, d.Seq), items.Update{
		Expr:   "SET quarantined = :why",
		Cond:   "attribute_exists(PK) AND attribute_not_exists(applied_version)",
		Values: map[string]any{":why": reason.Error()},
	})
	if err != nil && !errors.Is(err, tally.ErrConditionFailed) {
		return fmt.Errorf("quarantine delta %s #%d: %w", d.Collection, d.Seq, err)
	}
	s.log.Error("vector delta quarantined: its segment is unreadable; write the run again to repair it",
		"collection", d.Collection, "seq", d.Seq, "run", d.RunID, "key", d.Key, "err", reason)
	return nil
}

// RunDelta returns the delta registered for runID in the collection;
// tally.ErrNotFound if the run registered none (or it was collected after
// being applied long ago).
func (s *Store) RunDelta(ctx context.Context, coll, runID string) (Delta, error) {
	it, err := s.items.Get(ctx, runKey(coll, runID))
	if err != nil {
		return Delta{}, fmt.Errorf("run %s in %s: %w", runID, coll, err)
	}
	if d, ok := collectedDelta(coll, it); ok {
		return d, nil
	}
	seq, ok := asInt64(it["seq"])
	if !ok {
		return Delta{}, fmt.Errorf("run %s in %s: malformed marker: %w", runID, coll, ErrCorruptState)
	}
	return s.deltaBySeq(ctx, coll, seq)
}

// collectedDelta reads a run marker whose delta GC collected after it was
// applied; the marker keeps what callers need to know.
func collectedDelta(coll string, it items.Item) (Delta, bool) {
	if c, _ := it["collected"].(bool); !c {
		return Delta{}, false
	}
	d := Delta{Collection: coll}
	d.RunID, _ = it["run_id"].(string)
	d.Seq, _ = asInt64(it["seq"])
	d.AppliedVersion, _ = asInt64(it["applied_version"])
	up, _ := asInt64(it["upserts"])
	del, _ := asInt64(it["deletes"])
	d.Upserts, d.Deletes = int(up), int(del)
	return d, d.AppliedVersion > 0
}
