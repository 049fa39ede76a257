package places

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

// Partition keys of the cache's items, one per kind of lookup. PHONE,
// ADDRESS and URL are the old system's; TEXT and ID are new.
const (
	PKPhone   = "PLACES#PHONE"
	PKAddress = "PLACES#ADDRESS"
	PKURL     = "PLACES#URL"
	PKText    = "PLACES#TEXT"
	PKID      = "PLACES#ID"
)

// ItemType is the TYPE of every cache item, as the old system wrote it.
const ItemType = "PLACES_CACHE"

// Default lifetimes of cache entries. A miss is kept for less time than a
// hit because a business that is not listed yet may be listed soon.
const (
	DefaultTTL         = 30 * 24 * time.Hour
	DefaultNegativeTTL = 7 * 24 * time.Hour
)

// maxSKValueBytes bounds the value part of a sort key. DynamoDB allows 1 KB
// and OCR text can be anything, so a longer value keeps a readable prefix
// and is told apart from others by a hash of the whole.
const maxSKValueBytes = 128

// Attributes of a cache item besides PK, SK, TYPE and the TTL.
const (
	attrSearchType  = "search_type"
	attrSearchValue = "search_value" // the normalized value, in full
	attrPlaces      = "places"       // JSON array of Place; "[]" for a miss
	attrPlaceCount  = "place_count"
	attrPlaceID     = "place_id" // the first place's ID, for GSI1
	attrCachedAt    = "cached_at"
	attrHitCount    = "hit_count"
	attrLastHitAt   = "last_hit_at"
)

// CacheOptions tune a Cache; the zero value is usable.
type CacheOptions struct {
	// TTL is how long a lookup that found places is served from the
	// table; default DefaultTTL.
	TTL time.Duration
	// NegativeTTL is how long a lookup that found nothing is; default
	// DefaultNegativeTTL.
	NegativeTTL time.Duration
	// Now is the clock; default time.Now. Tests move it to expire entries.
	Now func() time.Time
	// Log receives cache failures, which never fail a lookup; default
	// slog.Default().
	Log *slog.Logger
}

// Cache is a Client that answers repeated lookups from the item store and
// asks its inner Client only on a miss. Results that found nothing are
// cached too, so a merchant the directory does not know costs one request
// a week, not one per receipt. The table is an optimization: when it fails
// the lookup goes to the inner Client and the failure is only logged.
//
// Concurrent misses on the same key in one process share one inner request.
type Cache struct {
	inner       Client
	table       items.Table
	ttl         time.Duration
	negativeTTL time.Duration
	now         func() time.Time
	log         *slog.Logger

	hits, misses atomic.Int64

	mu       sync.Mutex
	inflight map[items.Key]*flight
}

var _ Client = (*Cache)(nil)

// flight is one inner lookup that concurrent misses on its key wait for.
type flight struct {
	done   chan struct{}
	places []Place
	err    error
}

// NewCache wraps inner with the table t.
func NewCache(inner Client, t items.Table, opts CacheOptions) *Cache {
	c := &Cache{
		inner:       inner,
		table:       t,
		ttl:         opts.TTL,
		negativeTTL: opts.NegativeTTL,
		now:         opts.Now,
		log:         opts.Log,
		inflight:    map[items.Key]*flight{},
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	if c.negativeTTL <= 0 {
		c.negativeTTL = DefaultNegativeTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c
}

// Stats returns how many lookups were answered without an inner request
// (from the table, or by sharing a concurrent lookup's request) and how
// many made one.
func (c *Cache) Stats() (hits, misses int64) { return c.hits.Load(), c.misses.Load() }

// FindByPhone looks an E.164 phone number up, cached under PLACES#PHONE.
func (c *Cache) FindByPhone(ctx context.Context, e164 string) ([]Place, error) {
	if !ValidE164(e164) {
		return nil, fmt.Errorf("places: find by phone %q: not E.164 (+ and 8–15 digits): %w", e164, ErrInvalidArgument)
	}
	return c.lookup(ctx, PKPhone, e164, func(ctx context.Context) ([]Place, error) {
		return c.inner.FindByPhone(ctx, e164)
	})
}

// FindByText searches free text, cached under PLACES#TEXT by the text
// upper-cased with its spaces collapsed.
func (c *Cache) FindByText(ctx context.Context, text string) ([]Place, error) {
	return c.findText(ctx, PKText, "find by text", text)
}

// FindByAddress searches an address, cached under PLACES#ADDRESS; the
// directory sees the address exactly as FindByText would.
func (c *Cache) FindByAddress(ctx context.Context, address string) ([]Place, error) {
	return c.findText(ctx, PKAddress, "find by address", address)
}

func (c *Cache) findText(ctx context.Context, pk, op, text string) ([]Place, error) {
	value := normalizeText(text)
	if value == "" {
		return nil, fmt.Errorf("places: %s: empty text: %w", op, ErrInvalidArgument)
	}
	return c.lookup(ctx, pk, value, func(ctx context.Context) ([]Place, error) {
		return c.inner.FindByText(ctx, value)
	})
}

// FindByURL searches for the host of a website printed on a receipt
// ("WWW.COSTCO.COM/RECEIPTS" searches "costco.com"), cached under
// PLACES#URL by that host: the path never identifies the merchant, the host
// usually does.
func (c *Cache) FindByURL(ctx context.Context, rawURL string) ([]Place, error) {
	host, err := urlHost(rawURL)
	if err != nil {
		return nil, fmt.Errorf("places: find by URL %q: %w", rawURL, err)
	}
	return c.lookup(ctx, PKURL, host, func(ctx context.Context) ([]Place, error) {
		return c.inner.FindByText(ctx, host)
	})
}

// Details returns one place by ID, cached under PLACES#ID; an ID the
// directory does not know is cached as a miss and reported as ErrNotFound.
func (c *Cache) Details(ctx context.Context, id string) (Place, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return Place{}, fmt.Errorf("places: details: empty place ID: %w", ErrInvalidArgument)
	}
	found, err := c.lookup(ctx, PKID, id, func(ctx context.Context) ([]Place, error) {
		p, err := c.inner.Details(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil, nil // a miss worth remembering
		}
		if err != nil {
			return nil, err
		}
		return []Place{p}, nil
	})
	if err != nil {
		return Place{}, err
	}
	if len(found) == 0 {
		return Place{}, fmt.Errorf("places: details %q: %w", id, ErrNotFound)
	}
	return found[0], nil
}

// lookup answers from the table when it holds a live entry for value under
// pk, and otherwise calls fetch and stores its answer.
func (c *Cache) lookup(ctx context.Context, pk, value string, fetch func(context.Context) ([]Place, error)) ([]Place, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := items.Key{PK: pk, SK: sortKey(value)}
	if found, ok := c.read(ctx, key, value); ok {
		c.hits.Add(1)
		return found, nil
	}

	c.mu.Lock()
	if f, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// A leader canceled by its own caller says nothing about ours.
		if !isContextError(f.err) {
			if f.err == nil {
				c.hits.Add(1)
			}
			return clonePlaces(f.places), f.err
		}
		return c.fetchAndStore(ctx, key, pk, value, fetch)
	}
	f := &flight{done: make(chan struct{})}
	c.inflight[key] = f
	c.mu.Unlock()

	f.places, f.err = c.fetchAndStore(ctx, key, pk, value, fetch)

	c.mu.Lock()
	delete(c.inflight, key)
	c.mu.Unlock()
	close(f.done)
	return clonePlaces(f.places), f.err
}

func (c *Cache) fetchAndStore(ctx context.Context, key items.Key, pk, value string, fetch func(context.Context) ([]Place, error)) ([]Place, error) {
	c.misses.Add(1)
	found, err := fetch(ctx)
	if err != nil {
		return nil, err // errors are not answers: never cached
	}
	c.write(ctx, key, pk, value, found)
	return found, nil
}

// read returns the entry's places if the table holds a live entry for
// value; a failing table is logged and counts as a miss.
func (c *Cache) read(ctx context.Context, key items.Key, value string) ([]Place, bool) {
	it, err := c.table.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, tally.ErrNotFound) && ctx.Err() == nil {
			c.log.WarnContext(ctx, "places cache: read failed; asking the directory", "pk", key.PK, "sk", key.SK, "err", err)
		}
		return nil, false
	}
	if v, _ := it[attrSearchValue].(string); v != value {
		return nil, false // another value whose long key hashed alike
	}
	now := c.now()
	if expires, ok := epochSeconds(it[items.AttrTTL]); ok && expires <= now.Unix() {
		return nil, false
	}
	raw, _ := it[attrPlaces].(string)
	var found []Place
	if err := json.Unmarshal([]byte(raw), &found); err != nil {
		c.log.WarnContext(ctx, "places cache: unreadable entry; asking the directory", "pk", key.PK, "sk", key.SK, "err", err)
		return nil, false
	}
	_, err = c.table.Update(ctx, key, items.Update{
		Expr:   "SET #last = :now ADD #hits :one",
		Cond:   "attribute_exists(PK)",
		Names:  map[string]string{"#last": attrLastHitAt, "#hits": attrHitCount},
		Values: map[string]any{":now": now.UTC().Format(time.RFC3339), ":one": 1},
	})
	if err != nil && !items.IsConditionFailed(err) && ctx.Err() == nil {
		c.log.WarnContext(ctx, "places cache: hit count not updated", "pk", key.PK, "sk", key.SK, "err", err)
	}
	return found, true
}

// write stores an answer; a failing table is only logged.
func (c *Cache) write(ctx context.Context, key items.Key, pk, value string, found []Place) {
	if found == nil {
		found = []Place{}
	}
	raw, err := json.Marshal(found)
	if err != nil { // cannot happen with Place's field types; stay safe
		c.log.WarnContext(ctx, "places cache: encode failed", "pk", key.PK, "sk", key.SK, "err", err)
		return
	}
	now := c.now()
	ttl := c.ttl
	if len(found) == 0 {
		ttl = c.negativeTTL
	}
	it := items.Item{
		items.AttrPK:    key.PK,
		items.AttrSK:    key.SK,
		items.AttrType:  ItemType,
		attrSearchType:  strings.TrimPrefix(pk, "PLACES#"),
		attrSearchValue: value,
		attrPlaces:      string(raw),
		attrPlaceCount:  len(found),
		attrCachedAt:    now.UTC().Format(time.RFC3339),
		attrHitCount:    0,
		items.AttrTTL:   now.Add(ttl).Unix(),
	}
	if len(found) > 0 && found[0].ID != "" {
		it[attrPlaceID] = found[0].ID
		// The old system's index: every cached lookup that found a place.
		it["GSI1PK"] = "PLACE_ID"
		it["GSI1SK"] = "PLACE_ID#" + found[0].ID
	}
	if err := c.table.Put(ctx, it, items.Cond{}); err != nil && ctx.Err() == nil {
		c.log.WarnContext(ctx, "places cache: write failed", "pk", key.PK, "sk", key.SK, "err", err)
	}
}

// sortKey is "VALUE#" and the value, or for a long value a prefix of it
// and a hash of the whole, so every key fits DynamoDB's limit.
func sortKey(value string) string {
	if len(value) <= maxSKValueBytes {
		return "VALUE#" + value
	}
	prefix := value[:maxSKValueBytes-33]
	for !utf8.ValidString(prefix) {
		prefix = prefix[:len(prefix)-1]
	}
	sum := sha256.Sum256([]byte(value))
	return "VALUE#" + prefix + "#" + hex.EncodeToString(sum[:16])
}

// normalizeText is how addresses and free text are keyed: receipts print
// the same address in different cases and with ragged spacing.
func normalizeText(s string) string {
	return strings.ToUpper(strings.Join(strings.Fields(s), " "))
}

// urlHost extracts the lower-case host of a URL as printed on a receipt,
// scheme optional, without a leading "www.".
func urlHost(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("empty URL: %w", ErrInvalidArgument)
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("unparsable URL: %w", ErrInvalidArgument)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	host = strings.TrimPrefix(host, "www.")
	if host == "" || !strings.Contains(host, ".") || strings.ContainsAny(host, " \t") {
		return "", fmt.Errorf("no host name: %w", ErrInvalidArgument)
	}
	return host, nil
}

// epochSeconds reads a TTL attribute as the store returns numbers.
func epochSeconds(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// clonePlaces copies a shared answer so one caller's edits do not reach
// another's.
func clonePlaces(in []Place) []Place {
	if in == nil {
		return nil
	}
	out := make([]Place, len(in))
	for i, p := range in {
		p.Types = append([]string(nil), p.Types...)
		out[i] = p
	}
	return out
}
