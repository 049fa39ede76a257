package vector

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/vector/segment"
)

// Options configure a Store.
type Options struct {
	Blob  blob.Store
	Items items.Table
	// Dims is the length of every vector in every collection of this store
	// (the embedder's dimensions).
	Dims int
	// Prefix is prepended to every blob key; default "vectors/".
	Prefix string
	Log    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store writes deltas, compacts them into versions, and opens readers.
type Store struct {
	blob   blob.Store
	items  items.Table
	dims   int
	prefix string
	log    *slog.Logger
	now    func() time.Time
}

// New returns a Store over the given ports.
func New(opts Options) (*Store, error) {
	if opts.Blob == nil || opts.Items == nil {
		return nil, fmt.Errorf("vector store: blob and items ports are required: %w", tally.ErrInvalidArgument)
	}
	if opts.Dims <= 0 || opts.Dims > segment.MaxDims {
		return nil, fmt.Errorf("vector store: %d dimensions: %w", opts.Dims, tally.ErrInvalidArgument)
	}
	s := &Store{blob: opts.Blob, items: opts.Items, dims: opts.Dims, prefix: opts.Prefix, log: opts.Log, now: opts.Now}
	if s.prefix == "" {
		s.prefix = "vectors/"
	}
	if !strings.HasSuffix(s.prefix, "/") {
		s.prefix += "/"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Dims is the vector length of this store.
func (s *Store) Dims() int { return s.dims }

// Item keys and types (DESIGN §3 keeps every entity in one table).
const (
	typeHead     = "VECTOR_HEAD"
	typeDelta    = "VECTOR_DELTA"
	typeDeltaRun = "VECTOR_DELTA_RUN"
	typeSeq      = "VECTOR_SEQ"
)

func collectionPK(coll string) string { return "VECTOR#" + coll }
func headKey(coll string) items.Key   { return items.Key{PK: collectionPK(coll), SK: "HEAD"} }
func seqKey(coll string) items.Key    { return items.Key{PK: collectionPK(coll), SK: "SEQ"} }
func deltaKey(coll string, seq int64) items.Key {
	return items.Key{PK: collectionPK(coll), SK: fmt.Sprintf("DELTA#%016d", seq)}
}
func runKey(coll, runID string) items.Key {
	return items.Key{PK: collectionPK(coll), SK: "RUN#" + runID}
}

// Blob layout under the prefix: {coll}/deltas/{run}.seg,
// {coll}/segments/{name}.seg, {coll}/versions/{version}-{nonce}.json.
func (s *Store) deltaBlobKey(coll, runID string) string {
	return s.prefix + coll + "/deltas/" + runID + ".seg"
}
func (s *Store) segmentBlobKey(coll, name string) string {
	return s.prefix + coll + "/segments/" + name + ".seg"
}
func (s *Store) manifestBlobKey(coll string, version int64, nonce string) string {
	return fmt.Sprintf("%s%s/versions/%010d-%s.json", s.prefix, coll, version, nonce)
}

var runIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:=-]{0,159}$`)

// ValidateRunID rejects run ids that cannot name a delta.
func ValidateRunID(id string) error {
	if !runIDRE.MatchString(id) {
		return fmt.Errorf("run id %q: want 1–160 of [A-Za-z0-9_.:=-]: %w", id, tally.ErrInvalidArgument)
	}
	return nil
}

func nonce() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Manifest is one immutable version of a collection: the segments that make
// it up. It is JSON so an operator can read it.
type Manifest struct {
	Format     int       `json:"format"`
	Collection string    `json:"collection"`
	Version    int64     `json:"version"`
	Dims       int       `json:"dims"`
	CreatedAt  time.Time `json:"created_at"`
	// LeaseEpoch is the fencing token of the compactor that built it.
	LeaseEpoch int64 `json:"lease_epoch"`
	// Previous is the manifest this version was built from ("" for the
	// first), so the kept history can be walked back from the head.
	Previous string `json:"previous,omitempty"`
	// Records is the number of live records.
	Records  int           `json:"records"`
	Segments []SegmentInfo `json:"segments"`
}

// SegmentInfo names one segment of a version, its sidecars, and the ids of
// it that later writes replaced or deleted (its mask).
type SegmentInfo struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
	Bytes int64  `json:"bytes"`
	// Graph says the ANN graph is inside the segment file (versions written
	// before graphs moved off the publish path).
	Graph bool `json:"graph,omitempty"`
	// GraphKey, when set, is a graph-only segment holding this segment's
	// ANN graph. Maintenance adds it after the segment was published, so
	// no publish waits for a graph build.
	GraphKey string `json:"graph_key,omitempty"`
	// IDs, when set, is an id-only segment (the segment's ids as sorted
	// tombstones), so a compactor can tell which ids a delta replaces
	// without fetching the vectors. IDsBytes is its size.
	IDs      string `json:"ids,omitempty"`
	IDsBytes int64  `json:"ids_bytes,omitempty"`
	// Mask, when set, is a delete-only segment listing this segment's ids
	// that are no longer live.
	Mask   string `json:"mask,omitempty"`
	Masked int    `json:"masked,omitempty"`
}

// Live is the number of live records in the segment.
func (si SegmentInfo) Live() int { return si.Count - si.Masked }

// HasGraph reports whether searches of the segment can use an ANN graph.
func (si SegmentInfo) HasGraph() bool { return si.Graph || si.GraphKey != "" }

// files are the blob keys the segment needs: itself and its sidecars.
func (si SegmentInfo) files() []string {
	out := []string{si.Key}
	for _, k := range []string{si.Mask, si.IDs, si.GraphKey} {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

// head is the collection's pointer to its current version.
type head struct {
	Version  int64
	Manifest string // blob key; "" when Version is 0
}

// readHead returns the collection's head (version 0 when none was published).
func (s *Store) readHead(ctx context.Context, coll string) (head, error) {
	it, err := s.items.Get(ctx, headKey(coll))
	if errors.Is(err, tally.ErrNotFound) {
		return head{}, nil
	}
	if err != nil {
		return head{}, fmt.Errorf("read head of %s: %w", coll, err)
	}
	v, ok := asInt64(it["version"])
	key, _ := it["manifest"].(string)
	if !ok || v < 0 || (v > 0 && key == "") {
		return head{}, fmt.Errorf("read head of %s: malformed head item %v: %w", coll, it, ErrCorruptState)
	}
	return head{Version: v, Manifest: key}, nil
}

// Manifest returns the collection's head version: its segments, their
// sidecars and masks (an empty version 0 before the first publish).
func (s *Store) Manifest(ctx context.Context, coll string) (*Manifest, error) {
	if err := ValidateCollection(coll); err != nil {
		return nil, err
	}
	h, err := s.readHead(ctx, coll)
	if err != nil {
		return nil, err
	}
	return s.loadManifest(ctx, coll, h)
}

// ErrCorruptState means a stored manifest or pointer is malformed; the store
// refuses to guess.
var ErrCorruptState = errors.New("corrupt vector store state")

// loadManifest reads and checks one manifest.
func (s *Store) loadManifest(ctx context.Context, coll string, h head) (*Manifest, error) {
	if h.Version == 0 {
		return &Manifest{Format: 1, Collection: coll, Dims: s.dims}, nil
	}
	b, err := blob.ReadAll(ctx, s.blob, h.Manifest)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", h.Manifest, err)
	}
	m, err := decodeManifest(b, h.Manifest)
	if err != nil {
		return nil, err
	}
	if m.Format != 1 || m.Collection != coll || m.Version != h.Version || m.Dims != s.dims {
		return nil, fmt.Errorf("manifest %s: format %d, collection %q, version %d, dims %d do not match %s v%d (%d dims): %w",
			h.Manifest, m.Format, m.Collection, m.Version, m.Dims, coll, h.Version, s.dims, ErrCorruptState)
	}
	return m, nil
}

func decodeManifest(b []byte, key string) (*Manifest, error) {
	var m Manifest
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest %s: %v: %w", key, err, ErrCorruptState)
	}
	return &m, nil
}

// asInt64 reads an integer attribute; also accepts decimal text.
func asInt64(v any) (int64, bool) {
	if s, ok := v.(string); ok {
		i, err := strconv.ParseInt(s, 10, 64)
		return i, err == nil
	}
	return items.Int64Of(v)
}
