package vector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/items"
)

// GCOptions tune garbage collection.
type GCOptions struct {
	// Keep is how many versions stay readable (the head and Keep-1 before
	// it); default 4.
	Keep int
	// Grace is how long an unreferenced file survives, so a reader that
	// read an old head a moment ago can still fetch it; default 10 minutes.
	Grace time.Duration
}

// MarkerTTL is how long a run's marker outlives its collected delta.
const MarkerTTL = 30 * 24 * time.Hour

// GCResult counts what GC removed.
type GCResult struct {
	KeptVersions     []int64
	SegmentsDeleted  int
	ManifestsDeleted int
	DeltasDeleted    int
}

// GC deletes what no kept version references: segments and manifests older
// than the grace period, and deltas applied at or before the oldest kept
// version. Run it under the collection's lease, after Compact.
func (s *Store) GC(ctx context.Context, coll string, opts GCOptions) (GCResult, error) {
	if opts.Keep <= 0 {
		opts.Keep = 4
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Minute
	}
	var res GCResult
	h, err := s.readHead(ctx, coll)
	if err != nil || h.Version == 0 {
		return res, err
	}
	keptManifests := map[string]bool{}
	referenced := map[string]bool{}
	oldest := h.Version
	for key, n := h.Manifest, 0; key != "" && n < opts.Keep; n++ {
		b, err := blob.ReadAll(ctx, s.blob, key)
		if errors.Is(err, tally.ErrNotFound) {
			break // collected earlier: nothing older is kept
		}
		if err != nil {
			return res, fmt.Errorf("gc %s: %w", coll, err)
		}
		m, err := decodeManifest(b, key)
		if err != nil {
			return res, fmt.Errorf("gc %s: %w", coll, err)
		}
		keptManifests[key] = true
		res.KeptVersions = append(res.KeptVersions, m.Version)
		oldest = m.Version
		for _, si := range m.Segments {
			for _, f := range si.files() {
				referenced[f] = true
			}
		}
		key = m.Previous
	}
	cutoff := s.now().Add(-opts.Grace)

	// Unreferenced segments and manifests past the grace period.
	for _, dir := range []string{"segments/", "versions/"} {
		err := s.listAll(ctx, s.prefix+coll+"/"+dir, func(info blob.Info) error {
			if referenced[info.Key] || keptManifests[info.Key] || !info.Modified.Before(cutoff) {
				return nil
			}
			if err := s.blob.Delete(ctx, info.Key); err != nil {
				return err
			}
			if dir == "segments/" {
				res.SegmentsDeleted++
			} else {
				res.ManifestsDeleted++
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("gc %s: %w", coll, err)
		}
	}

	// Deltas no kept version needs.
	deltas, err := s.Deltas(ctx, coll, false, 0)
	if err != nil {
		return res, fmt.Errorf("gc %s: %w", coll, err)
	}
	for _, d := range deltas {
		if d.AppliedVersion == 0 || d.AppliedVersion > oldest || d.RegisteredAt.After(cutoff) {
			continue
		}
		if err := s.blob.Delete(ctx, d.Key); err != nil {
			return res, fmt.Errorf("gc %s: delete delta #%d: %w", coll, d.Seq, err)
		}
		cond := items.Cond{Expr: "attribute_exists(applied_version)"}
		if err := s.items.Delete(ctx, deltaKey(coll, d.Seq), cond); err != nil && !errors.Is(err, tally.ErrConditionFailed) {
			return res, fmt.Errorf("gc %s: delete delta #%d: %w", coll, d.Seq, err)
		}
		// Keep the run's marker, with what it needs to answer RunDelta,
		// for MarkerTTL: a late or redelivered message for the run still
		// learns that its delta was applied.
		if _, err := s.items.Update(ctx, runKey(coll, d.RunID), items.Update{
			Expr: "SET applied_version = :v, upserts = :u, deletes = :d, collected = :t, time_to_live = :ttl",
			Cond: "attribute_exists(PK)",
			Values: map[string]any{":v": d.AppliedVersion, ":u": d.Upserts, ":d": d.Deletes, ":t": true,
				":ttl": s.now().Add(MarkerTTL).Unix()},
		}); err != nil && !errors.Is(err, tally.ErrConditionFailed) {
			return res, fmt.Errorf("gc %s: keep run marker %s: %w", coll, d.RunID, err)
		}
		res.DeltasDeleted++
	}
	if res.SegmentsDeleted+res.ManifestsDeleted+res.DeltasDeleted > 0 {
		s.log.Info("vector gc", "collection", coll, "kept_versions", res.KeptVersions,
			"segments_deleted", res.SegmentsDeleted, "manifests_deleted", res.ManifestsDeleted, "deltas_deleted", res.DeltasDeleted)
	}
	return res, nil
}

func (s *Store) listAll(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	opts := blob.ListOptions{Prefix: prefix}
	for {
		page, err := s.blob.List(ctx, opts)
		if err != nil {
			return err
		}
		for _, info := range page.Objects {
			if !strings.HasPrefix(info.Key, prefix) {
				continue
			}
			if err := fn(info); err != nil {
				return err
			}
		}
		if page.NextToken == "" {
			return nil
		}
		opts.Token = page.NextToken
	}
}
