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
	"github.com/tallyhq/tally/vector/segment"
)

// CompactOptions tune compaction. Zero values take the defaults.
type CompactOptions struct {
	// MaxDeltas is how many deltas one version merges (at most
	// MaxDeltasPerVersion: the publish transaction marks each applied).
	MaxDeltas int
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

	// Hold what this compaction reads, so a reader's refresh in the same
	// process cannot unmap it meanwhile.
	held := compactorFiles(m.Segments)
	for _, d := range pending {
		held = append(held, d.Key)
	}
	release := cache.c.hold(held)
	defer release()

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
	w := s.newSegWriter(coll, next, opts.Mirror)
	var newSegs []SegmentInfo

	// Mask ids of older segments that these deltas replaced or deleted,
	// reading each segment's id sidecar, not its vectors.
	touched := touchedIDs(latest, deleted)
	for _, si := range m.Segments {
		ids, err := cache.ids(ctx, si)
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
			if ids.has(id) && (mask == nil || !mask.Deletes(id)) {
				masked = append(masked, id)
				added++
			}
		}
		if added > 0 {
			sort.Strings(masked)
			if si.Mask, err = w.mask(ctx, masked); err != nil {
				return res, fmt.Errorf("compact %s: %w", coll, err)
			}
			si.Masked = len(masked)
		}
		if si.Live() > 0 {
			newSegs = append(newSegs, si)
		}
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
		// No graph here: building one takes minutes at scale, and the
		// publish must not wait for it. Maintain adds it afterwards;
		// until then the segment is searched exactly.
		si, _, err := w.segment(ctx, recs)
		if err != nil {
			return res, fmt.Errorf("compact %s: %w", coll, err)
		}
		newSegs = append(newSegs, si)
	}

	nm, writes, err := s.nextVersion(ctx, w, h, l, newSegs)
	if err != nil {
		return res, fmt.Errorf("compact %s: %w", coll, err)
	}
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
	// The next compaction starts warm: keep what it reads of this version.
	cache.c.keep("compactor/"+coll, compactorFiles(nm.Segments))
	res.Version, res.Published, res.Deltas = next, true, pending
	res.Records, res.Segments = nm.Records, len(nm.Segments)
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

// segWriter writes one new version's files under fresh names (the version
// number and a nonce), so an abandoned attempt never collides with the
// next one.
type segWriter struct {
	s       *Store
	coll    string
	version int64
	nonce   string
	mirror  string
	written int
}

func (s *Store) newSegWriter(coll string, version int64, mirror string) *segWriter {
	return &segWriter{s: s, coll: coll, version: version, nonce: nonce(), mirror: mirror}
}

// put stores one encoded segment file under the next name with suffix.
func (w *segWriter) put(ctx context.Context, data []byte, suffix string) (string, error) {
	w.written++
	key := w.s.segmentBlobKey(w.coll, fmt.Sprintf("v%010d-%s-%d%s", w.version, w.nonce, w.written, suffix))
	if _, err := w.s.blob.Put(ctx, key, bytes.NewReader(data), blob.PutOptions{ContentType: segmentContentType}); err != nil {
		return "", fmt.Errorf("write segment %s: %w", key, err)
	}
	if w.mirror != "" {
		if err := mirrorWrite(w.mirror, key, data); err != nil {
			w.s.log.Warn("mirror segment", "key", key, "err", err)
		}
	}
	return key, nil
}

// encode writes one segment file to memory, its buffer sized up front:
// growing it by doubling touches (and clears) every page several times,
// which dominated merge time.
func (w *segWriter) encode(recs []segment.Record, tombs []string, graph []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(segmentSizeHint(w.s.dims, recs, tombs) + len(graph))
	if _, err := segment.Write(&buf, w.s.dims, recs, tombs, segment.BuildOptions{Graph: graph}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// segment writes recs (in their order, which a graph's indices follow)
// as a new segment with its id sidecar, and returns the segment's bytes
// too, for a graph build over its vectors.
func (w *segWriter) segment(ctx context.Context, recs []segment.Record) (SegmentInfo, []byte, error) {
	data, err := w.encode(recs, nil, nil)
	if err != nil {
		return SegmentInfo{}, nil, err
	}
	key, err := w.put(ctx, data, "")
	if err != nil {
		return SegmentInfo{}, nil, err
	}
	si := SegmentInfo{Key: key, Count: len(recs), Bytes: int64(len(data))}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	sort.Strings(ids)
	idData, err := w.encode(nil, ids, nil)
	if err != nil {
		return SegmentInfo{}, nil, err
	}
	if si.IDs, err = w.put(ctx, idData, "-ids"); err != nil {
		return SegmentInfo{}, nil, err
	}
	si.IDsBytes = int64(len(idData))
	return si, data, nil
}

// mask writes a delete-only segment of ids (sorted, unique).
func (w *segWriter) mask(ctx context.Context, ids []string) (string, error) {
	data, err := w.encode(nil, ids, nil)
	if err != nil {
		return "", err
	}
	return w.put(ctx, data, "-mask")
}

// graph writes a graph-only segment: no records, the graph's bytes in its
// checksummed graph section, so it is fetched, verified and cached like
// any other segment.
func (w *segWriter) graph(ctx context.Context, graph []byte) (string, error) {
	data, err := w.encode(nil, nil, graph)
	if err != nil {
		return "", err
	}
	return w.put(ctx, data, "-graph")
}

// nextVersion writes the manifest of the version after h made of segs, and
// returns it with the start of its publish transaction: the lease's fence
// and the head's move from h (compare-and-swap).
func (s *Store) nextVersion(ctx context.Context, w *segWriter, h head, l *lease.Lease, segs []SegmentInfo) (Manifest, []items.Write, error) {
	nm := Manifest{Format: 1, Collection: w.coll, Version: w.version, Dims: s.dims, CreatedAt: s.now().UTC(), LeaseEpoch: l.Epoch(), Previous: h.Manifest, Segments: segs}
	for _, si := range segs {
		nm.Records += si.Live()
	}
	mb, err := json.MarshalIndent(nm, "", "  ")
	if err != nil {
		return nm, nil, fmt.Errorf("encode manifest: %w", err)
	}
	mkey := s.manifestBlobKey(w.coll, w.version, w.nonce)
	if _, err := s.blob.PutIfAbsent(ctx, mkey, bytes.NewReader(mb), blob.PutOptions{ContentType: "application/json"}); err != nil {
		return nm, nil, fmt.Errorf("write manifest: %w", err)
	}
	hk := headKey(w.coll)
	headCond := items.Cond{Expr: "#v = :prev", Names: map[string]string{"#v": "version"}, Values: map[string]any{":prev": h.Version}}
	if h.Version == 0 {
		headCond = items.Cond{Expr: "attribute_not_exists(PK)"}
	}
	headItem := items.Item{
		"PK": hk.PK, "SK": hk.SK, "TYPE": typeHead, "collection": w.coll,
		"version": w.version, "manifest": mkey, "records": nm.Records,
		"published_at": nm.CreatedAt.Format(time.RFC3339Nano), "lease_epoch": l.Epoch(),
	}
	return nm, []items.Write{l.Fence(), items.PutWrite(headItem, headCond)}, nil
}

// compactorFiles are the files a compaction reads of segs: each segment's
// id sidecar (the segment itself when it has none) and mask.
func compactorFiles(segs []SegmentInfo) []string {
	var out []string
	for _, si := range segs {
		if si.IDs != "" {
			out = append(out, si.IDs)
		} else {
			out = append(out, si.Key)
		}
		if si.Mask != "" {
			out = append(out, si.Mask)
		}
	}
	return out
}

// idSet answers whether a segment holds an id: from its id sidecar, or
// from the segment itself when it was written before sidecars.
type idSet struct{ sidecar, seg *segment.Segment }

func (s idSet) has(id string) bool {
	if s.sidecar != nil {
		return s.sidecar.Deletes(id)
	}
	_, ok := s.seg.Lookup(id)
	return ok
}

// ids opens what answers for the segment's ids: its sidecar when it has
// one (a few bytes per id), else the whole segment.
func (c *Cache) ids(ctx context.Context, si SegmentInfo) (idSet, error) {
	if si.IDs != "" {
		sc, err := c.c.get(ctx, si.IDs)
		return idSet{sidecar: sc}, err
	}
	seg, err := c.c.get(ctx, si.Key)
	return idSet{seg: seg}, err
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
