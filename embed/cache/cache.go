// Package cache keeps embeddings in the item store, so a redelivered record
// or a text seen before (a merchant's header lines, "SUBTOTAL", "THANK YOU")
// costs no embedding request.
//
// Entries are keyed by model and by the SHA-256 of the text, so vectors of
// different models never meet and texts of any length make short keys.
// The cache is an optimisation only: when the table cannot be read or
// written the failure is logged and the inner embedder answers.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
	"github.com/tallyhq/tally/items"
)

// DefaultTTL is how long an entry lives: long enough that reprocessing and
// a merchant's recurring lines hit, short enough that a retired model's
// entries go away by themselves.
const DefaultTTL = 90 * 24 * time.Hour

// ItemType is the TYPE of cache entries, so they can be found (and counted
// or purged) through the GSITYPE index.
const ItemType = "EMBEDDING_CACHE"

// Item key prefixes and attribute names of an entry.
const (
	pkPrefix   = "EMBEDDING#"
	skPrefix   = "TEXT#"
	attrVector = "vector"
	attrDims   = "dims"
)

// ErrInnerMismatch means the inner embedder answered with a different number
// of vectors than texts; nothing can be matched up, so the call fails.
var ErrInnerMismatch = errors.New("inner embedder returned the wrong number of vectors")

// Options tune a Cache.
type Options struct {
	// TTL is the lifetime of an entry (0 means DefaultTTL). It is stored
	// as items.AttrTTL, so the store drops expired entries itself.
	TTL time.Duration
	// Log receives cache failures (which never fail a call); nil discards.
	Log *slog.Logger
}

// Cache is an embed.Embedder that answers repeated texts from the table and
// sends only the others to the inner embedder. It is safe for concurrent use.
type Cache struct {
	inner  embed.Embedder
	table  items.Table
	ttl    time.Duration
	log    *slog.Logger
	pk     string
	hits   atomic.Int64
	misses atomic.Int64
}

var _ embed.Embedder = (*Cache)(nil)

// New returns a cache of inner's vectors in t.
func New(inner embed.Embedder, t items.Table, opts Options) (*Cache, error) {
	if inner == nil || t == nil {
		return nil, fmt.Errorf("embed cache: inner embedder and table are required: %w", tally.ErrInvalidArgument)
	}
	if opts.TTL < 0 {
		return nil, fmt.Errorf("embed cache: negative TTL %v: %w", opts.TTL, tally.ErrInvalidArgument)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Cache{inner: inner, table: t, ttl: opts.TTL, log: opts.Log, pk: pkPrefix + inner.Model()}, nil
}

// Dims is the inner embedder's vector length.
func (c *Cache) Dims() int { return c.inner.Dims() }

// Model is the inner embedder's model: cached vectors are its vectors.
func (c *Cache) Model() string { return c.inner.Model() }

// Stats counts distinct texts per call answered from the cache (hits) and
// sent to the inner embedder (misses), since New.
func (c *Cache) Stats() (hits, misses int64) { return c.hits.Load(), c.misses.Load() }

// Embed returns one vector per text, in order. Each distinct text is looked
// up once; the misses go to the inner embedder in one call and are stored.
func (c *Cache) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := embed.ValidateTexts(texts); err != nil {
		return nil, fmt.Errorf("embed cache: %w", err)
	}
	if len(texts) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embed cache: %w", err)
	}

	// Distinct texts, and where each input position finds its vector.
	var unique []string
	slot := make([]int, len(texts))
	seen := make(map[string]int, len(texts))
	for i, s := range texts {
		u, ok := seen[s]
		if !ok {
			u = len(unique)
			seen[s] = u
			unique = append(unique, s)
		}
		slot[i] = u
	}

	keys := make([]items.Key, len(unique))
	for u, s := range unique {
		keys[u] = c.key(s)
	}
	vectors := c.lookup(ctx, keys)

	var missTexts []string
	var missSlots []int
	for u, v := range vectors {
		if v == nil {
			missTexts = append(missTexts, unique[u])
			missSlots = append(missSlots, u)
		}
	}
	c.hits.Add(int64(len(unique) - len(missTexts)))
	c.misses.Add(int64(len(missTexts)))

	if len(missTexts) > 0 {
		fresh, err := c.inner.Embed(ctx, missTexts)
		if err != nil {
			return nil, fmt.Errorf("embed cache: %w", err)
		}
		if len(fresh) != len(missTexts) {
			return nil, fmt.Errorf("embed cache: %d vectors for %d texts: %w", len(fresh), len(missTexts), ErrInnerMismatch)
		}
		for j, u := range missSlots {
			vectors[u] = fresh[j]
		}
		c.store(ctx, missSlots, keys, vectors)
	}

	out := make([][]float32, len(texts))
	used := make([]bool, len(unique))
	for i, u := range slot {
		if used[u] {
			// A repeated text gets its own copy, so a caller changing
			// one vector does not change another.
			out[i] = slices.Clone(vectors[u])
			continue
		}
		used[u] = true
		out[i] = vectors[u]
	}
	return out, nil
}

// key addresses text's entry. Hashing keeps keys short and of fixed size
// whatever the text (DynamoDB caps a sort key at 1 KB).
func (c *Cache) key(text string) items.Key {
	sum := sha256.Sum256([]byte(text))
	return items.Key{PK: c.pk, SK: skPrefix + hex.EncodeToString(sum[:])}
}

// lookup returns the cached vector of each key, nil for a miss. A read
// failure is logged and leaves the rest as misses: the inner embedder can
// still answer.
func (c *Cache) lookup(ctx context.Context, keys []items.Key) [][]float32 {
	vectors := make([][]float32, len(keys))
	index := make(map[items.Key]int, len(keys))
	for i, k := range keys {
		index[k] = i
	}
	for start := 0; start < len(keys); start += items.MaxBatchGet {
		end := min(start+items.MaxBatchGet, len(keys))
		found, err := c.table.BatchGet(ctx, keys[start:end])
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("embedding cache read failed; embedding without it", "model", c.inner.Model(), "keys", end-start, "err", err)
			}
			return vectors
		}
		for _, it := range found {
			i, ok := index[it.Key()]
			if !ok {
				continue
			}
			v, err := decodeVector(it, c.inner.Dims())
			if err != nil {
				c.log.Warn("embedding cache entry unusable; embedding again", "pk", it.Key().PK, "sk", it.Key().SK, "err", err)
				continue
			}
			vectors[i] = v
		}
	}
	return vectors
}

// store writes the entries of the given slots (overwriting unusable ones).
// A write failure is only logged: the caller already has its vectors.
func (c *Cache) store(ctx context.Context, slots []int, keys []items.Key, vectors [][]float32) {
	expires := time.Now().Add(c.ttl).Unix()
	dims := c.inner.Dims()
	puts := make([]items.Item, 0, len(slots))
	for _, u := range slots {
		if len(vectors[u]) != dims {
			continue // would only be read back as a miss
		}
		puts = append(puts, items.Item{
			items.AttrPK:   keys[u].PK,
			items.AttrSK:   keys[u].SK,
			items.AttrType: ItemType,
			attrDims:       dims,
			attrVector:     encodeVector(vectors[u]),
			items.AttrTTL:  expires,
		})
	}
	if err := items.PutAll(ctx, c.table, puts); err != nil && ctx.Err() == nil {
		c.log.Warn("embedding cache write failed", "model", c.inner.Model(), "entries", len(puts), "err", err)
	}
}

// encodeVector packs v as base64 of its little-endian float32 bytes: 4
// bytes a dimension (5.3 after base64) in one attribute, where a list of
// decimal numbers needs 9 significant digits a component to round-trip a
// float32 exactly, costs about 7 bytes each in DynamoDB's size accounting
// and 12–20 as JSON (the SQLite adapter's storage), and is 1536 typed values
// to marshal instead of one string. A string rather than a binary attribute
// keeps table exports plain JSON.
func encodeVector(v []float32) string {
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(buf)
}

// Reasons an entry cannot be used.
var (
	errBadDims   = errors.New("dims differ from the embedder's")
	errBadVector = errors.New("vector is not base64 of little-endian float32s")
)

// decodeVector unpacks an entry's vector, checking it has dims finite
// components.
func decodeVector(it items.Item, dims int) ([]float32, error) {
	if d, ok := it[attrDims].(int64); !ok || d != int64(dims) {
		return nil, fmt.Errorf("%w: stored %v, want %d", errBadDims, it[attrDims], dims)
	}
	s, ok := it[attrVector].(string)
	if !ok {
		return nil, fmt.Errorf("%w: attribute is %T", errBadVector, it[attrVector])
	}
	buf, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadVector, err)
	}
	if len(buf) != 4*dims {
		return nil, fmt.Errorf("%w: %d bytes for %d dims", errBadVector, len(buf), dims)
	}
	v := make([]float32, dims)
	for i := range v {
		x := math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("%w: component %d is %v", errBadVector, i, x)
		}
		v[i] = x
	}
	return v, nil
}
