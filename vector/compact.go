package vector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/lease"
	"github.com/tallyhq/tally/vector/ann"
	"github.com/tallyhq/tally/vector/segment"
)

// CompactOptions tune compaction. Zero values take the defaults.
type CompactOptions struct {
	// MaxDeltas is how many deltas one version merges (at most
	// MaxDeltasPerVersion: the publish transaction marks each applied).
	MaxDeltas int
	// GraphMin is the size from which a new segment gets an ANN graph;
	// smaller segments are scanned exactly. Default 5000.
	GraphMin int
	// SmallSegment is the live-record count under which a segment counts as
	// small; when more than MaxSmall segments are small they are merged into
	// one. Defaults 50,000 and 8.
	SmallSegment int
	MaxSmall     int
	// Graph tunes ANN construction.
	Graph ann.Params
	// Mirror, when set, is a directory (a shared file system such as EFS)
	// that receives a copy of every new segment, for readers in the efs
	// modes.
	Mirror string
}

// MaxDeltasPerVersion bounds one version: a publish is one transaction of
// the fence, the head update and one applied-mark per delta.
const MaxDeltasPerVersion = items.MaxTransact - 4

func (o CompactOptions) withDefaults() CompactOptions {
	if o.MaxDeltas <= 0 || o.MaxDeltas > MaxDeltasPerVersion {
		o.MaxDeltas = MaxDeltasPerVersion
	}
	if o.GraphMin <= 0 {
		o.GraphMin = 5000
	}
	if o.SmallSegment <= 0 {
		o.SmallSegment = 50_000
	}
	if o.MaxSmall <= 0 {
		o.MaxSmall = 8
	}
	return o
}

// CompactResult reports one published version (or that nothing was pending).
type CompactResult struct {
	Collection string
	Version    int64 // the head after compaction
	Published  bool
	Deltas     []Delta // merged into Version
	Upserts    int     // records written by the merged deltas
	Deletes    int     // tombstones applied
	Records    int     // live records in Version
	Segments   int
	Merged     int // small segments merged into one
	// Quarantined lists deltas set aside because their segment was
	// unreadable.
	Quarantined []Delta
}

// ErrConflict means the head moved while this compaction ran; nothing was
// published and it is safe to retry.
var ErrConflict = fmt.Errorf("vector head moved during compaction: %w", tally.ErrConditionFailed)

// Compact merges the collection's pending deltas (up to MaxDeltas, oldest
// first) into the next version and publishes it, provided l is still held.
// Everything is written under fresh names before one transaction checks the
// lease (fencing), moves the head from the version this compaction read, and
// marks each merged delta applied; if any of that fails nothing becomes
// visible. A compactor whose lease lapsed gets lease.ErrLost.
func (s *Store) Compact(ctx context.Context, coll string, l *lease.Lease, cache *Cache, opts CompactOptions) (CompactResult, error) {
	opts = opts.withDefaults()
	res := CompactResult{Collection: coll}
	if err := ValidateCollection(coll); err != nil {
		return res, err
	}
	h, err := s.readHead(ctx, coll)
	if err != nil {
		return res, err
	}
	res.Version = h.Version
	m, err := s.loadManifest(ctx, coll, h)
	if err != nil {
		return res, err
	}
	pending, err := s.Deltas(ctx, coll, true, opts.MaxDeltas)
	if err != nil {
		return res, err
	}
	if len(pending) == 0 {
		res.Records, res.Segments = m.Records, len(m.Segments)
		return res, nil
	}

	// Fold the deltas in registration order: the later write wins. A delta
	// whose segment is unreadable is quarantined (kept, reported), so one
	// bad file never stops every other delta from being compacted.
	latest := map[string]segment.Record{}
	deleted := map[string]bool{}
	readable := pending[:0]
	for _, d := range pending {
		seg, err := cache.c.get(ctx, d.Key)
		if err == nil && seg.Dims() != s.dims {
			err = fmt.Errorf("delta has %d dims, want %d: %w", seg.Dims(), s.dims, segment.ErrCorrupt)
		}
		if errors.Is(err, segment.ErrCorrupt) || errors.Is(err, tally.ErrNotFound) {
			if qerr := s.quarantine(ctx, d, err); qerr != nil {
				return res, qerr
			}
			res.Quarantined = append(res.Quarantined, d)
			continue
		}
		if err != nil {
			return res, fmt.Errorf("compact %s: delta #%d: %w", coll, d.Seq, err)
		}
		readable = append(readable, d)
		for _, id := range seg.Tombstones() {
			delete(latest, id)
			deleted[id] = true
			res.Deletes++
		}
		for i := range seg.Len() {
			r := seg.Record(i)
			latest[r.ID] = r
			delete(deleted, r.ID)
			res.Upserts++
		}
	}
	pending = readable
	if len(pending) == 0 {
		res.Records, res.Segments = m.Records, len(m.Segments)
		return res, nil
	}

	next := h.Version + 1
	tag := fmt.Sprintf("v%010d-%s", next, nonce())
	var newSegs []SegmentInfo
	written := 0
	writeSeg := func(recs []segment.Record, tombs []string, suffix string) (SegmentInfo, error) {
		var graph []byte
		if len(recs) >= opts.GraphMin {
			flat := make([]float32, 0, len(recs)*s.dims)
			for _, r := range recs {
				flat = append(flat, r.Vector...)
			}
			g, err := ann.Build(ctx, flat, s.dims, opts.Graph)
			if err != nil {
				return SegmentInfo{}, fmt.Errorf("build graph: %w", err)
			}
			graph = g.MarshalBinary()
		}
		var buf bytes.Buffer
		// Size the buffer up front: growing it by doubling touches (and
		// clears) every page several times, which dominated merge time.
		buf.Grow(segmentSizeHint(s.dims, recs, tombs) + len(graph))
		if _, err := segment.Write(&buf, s.dims, recs, tombs, segment.BuildOptions{Graph: graph}); err != nil {
			return SegmentInfo{}, err
		}
		written++
		key := s.segmentBlobKey(coll, fmt.Sprintf("%s-%d%s", tag, written, suffix))
		size := int64(buf.Len())
		data := buf.Bytes()
		if _, err := s.blob.Put(ctx, key, bytes.NewReader(data), blob.PutOptions{ContentType: segmentContentType}); err != nil {
			return SegmentInfo{}, fmt.Errorf("write segment %s: %w", key, err)
		}
		if opts.Mirror != "" {
			if err := mirrorWrite(opts.Mirror, key, data); err != nil {
				s.log.Warn("mirror segment", "key", key, "err", err)
			}
		}
		return SegmentInfo{Key: key, Count: len(recs), Bytes: size, Graph: graph != nil}, nil
	}

	// Mask ids of older segments that these deltas replaced or deleted.
	touched := touchedIDs(latest, deleted)
	for _, si := range m.Segments {
		seg, err := cache.c.get(ctx, si.Key)
		if err != nil {
			return res, fmt.Errorf("compact %s: %w", coll, err)
		}
		mask, err := cache.mask(ctx, si)
		if err != nil {
			return res, fmt.Errorf("compact %s: %w", coll, err)
		}
		var masked []string
		if mask != nil {
			masked = append(masked, mask.Tombstones()...)
		}
		added := 0
		for _, id := range touched {
			if _, ok := seg.Lookup(id); ok && (mask == nil || !mask.Deletes(id)) {
				masked = append(masked, id)
				added++
			}
		}
		if added > 0 {
			sort.Strings(masked)
			mi, err := writeSeg(nil, masked, "-mask")
			if err != nil {
				return res, fmt.Errorf("compact %s: %w", coll, err)
			}
			si.Mask, si.Masked = mi.Key, len(masked)
		}
		newSegs = append(newSegs, si)
	}
	if len(latest) > 0 {
		ids := make([]string, 0, len(latest))
		for id := range latest {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		recs := make([]segment.Record, len(ids))
		for i, id := range ids {
			recs[i] = latest[id]
		}
		si, err := writeSeg(recs, nil, "")
		if err != nil {
			return res, fmt.Errorf("compact %s: %w", coll, err)
		}
		newSegs = append(newSegs, si)
	}
	// Drop segments with nothing live; merge small or mostly dead ones.
	kept := newSegs[:0]
	for _, si := range newSegs {
		if si.Live() > 0 {
			kept = append(kept, si)
		}
	}
	newSegs = kept
	var small, rest []SegmentInfo
	for _, si := range newSegs {
		if si.Live() < opts.SmallSegment || si.Masked*2 > si.Count {
			small = append(small, si)
		} else {
			rest = append(rest, si)
		}
	}
	if len(small) > opts.MaxSmall {
		var recs []segment.Record
		for _, si := range small {
			seg, err := cache.c.get(ctx, si.Key)
			if err != nil {
				return res, fmt.Errorf("compact %s: %w", coll, err)
			}
			mask, err := cache.mask(ctx, si)
			if err != nil {
				return res, fmt.Errorf("compact %s: %w", coll, err)
			}
			for i := range seg.Len() {
				if mask != nil && mask.Deletes(seg.ID(i)) {
					continue
				}
				recs = append(recs, seg.Record(i))
			}
		}
		sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
		si, err := writeSeg(recs, nil, "")
		if err != nil {
			return res, fmt.Errorf("compact %s: %w", coll, err)
		}
		res.Merged = len(small)
		newSegs = append(rest, si)
	}

	nm := Manifest{Format: 1, Collection: coll, Version: next, Dims: s.dims, CreatedAt: s.now().UTC(), LeaseEpoch: l.Epoch(), Previous: h.Manifest, Segments: newSegs}
	for _, si := range newSegs {
		nm.Records += si.Live()
	}
	mb, err := json.MarshalIndent(nm, "", "  ")
	if err != nil {
		return res, fmt.Errorf("compact %s: encode manifest: %w", coll, err)
	}
	mkey := s.manifestBlobKey(coll, next, tag[len(fmt.Sprintf("v%010d-", next)):])
	if _, err := s.blob.PutIfAbsent(ctx, mkey, bytes.NewReader(mb), blob.PutOptions{ContentType: "application/json"}); err != nil {
		return res, fmt.Errorf("compact %s: write manifest: %w", coll, err)
	}

	// Publish: one transaction, fenced by the lease.
	hk := headKey(coll)
	headCond := items.Cond{Expr: "#v = :prev", Names: map[string]string{"#v": "version"}, Values: map[string]any{":prev": h.Version}}
	if h.Version == 0 {
		headCond = items.Cond{Expr: "attribute_not_exists(PK)"}
	}
	headItem := items.Item{
		"PK": hk.PK, "SK": hk.SK, "TYPE": typeHead, "collection": coll,
		"version": next, "manifest": mkey, "records": nm.Records,
		"published_at": nm.CreatedAt.Format(time.RFC3339Nano), "lease_epoch": l.Epoch(),
	}
	writes := []items.Write{l.Fence(), items.PutWrite(headItem, headCond)}
	for _, d := range pending {
		writes = append(writes, items.UpdateWrite(deltaKey(coll, d.Seq), "SET #av = :v", items.Cond{
			Expr:   "attribute_exists(PK) AND attribute_not_exists(#av)",
			Names:  map[string]string{"#av": "applied_version"},
			Values: map[string]any{":v": next},
		}))
	}
	if err := s.items.TransactWrite(ctx, writes); err != nil {
		var tx *items.TxCanceledError
		if errors.As(err, &tx) {
			if tx.Index == 0 {
				return res, fmt.Errorf("compact %s: publish v%d: %w", coll, next, lease.ErrLost)
			}
			return res, fmt.Errorf("compact %s: publish v%d: %w", coll, next, ErrConflict)
		}
		return res, fmt.Errorf("compact %s: publish v%d: %w", coll, next, err)
	}
	for i := range pending {
		pending[i].AppliedVersion = next
	}
	res.Version, res.Published, res.Deltas = next, true, pending
	res.Records, res.Segments = nm.Records, len(newSegs)
	s.log.Info("vector version published", "collection", coll, "version", next, "deltas", len(pending),
		"upserts", res.Upserts, "deletes", res.Deletes, "records", res.Records, "segments", res.Segments)
	return res, nil
}

func touchedIDs(latest map[string]segment.Record, deleted map[string]bool) []string {
	ids := make([]string, 0, len(latest)+len(deleted))
	for id := range latest {
		ids = append(ids, id)
	}
	for id := range deleted {
		ids = append(ids, id)
	}
	return ids
}

// mask opens the segment's mask (the ids of it no longer live), or returns
// nil when it has none.
func (c *Cache) mask(ctx context.Context, si SegmentInfo) (*segment.Segment, error) {
	if si.Mask == "" {
		return nil, nil
	}
	return c.c.get(ctx, si.Mask)
}

// segmentSizeHint estimates a segment's encoded size from its contents.
func segmentSizeHint(dims int, recs []segment.Record, tombs []string) int {
	n := 4096
	for _, r := range recs {
		n += dims*4 + len(r.ID) + 16 + 24*len(r.Meta)
		for k, v := range r.Meta {
			n += len(k)
			if str, ok := v.(string); ok {
				n += len(str)
			}
		}
	}
	for _, t := range tombs {
		n += len(t) + 8
	}
	return n
}
