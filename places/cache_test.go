package places_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/places"
)

// fakeClient answers from maps and records every call.
type fakeClient struct {
	mu      sync.Mutex
	calls   []string
	results map[string][]places.Place // by "phone:…", "text:…"
	details map[string]places.Place
	err     error
}

func (f *fakeClient) record(call string) ([]places.Place, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if f.err != nil {
		return nil, f.err
	}
	return f.results[call], nil
}

func (f *fakeClient) FindByPhone(_ context.Context, e164 string) ([]places.Place, error) {
	return f.record("phone:" + e164)
}

func (f *fakeClient) FindByText(_ context.Context, text string) ([]places.Place, error) {
	return f.record("text:" + text)
}

func (f *fakeClient) Details(_ context.Context, id string) (places.Place, error) {
	if _, err := f.record("details:" + id); err != nil {
		return places.Place{}, err
	}
	p, ok := f.details[id]
	if !ok {
		return places.Place{}, fmt.Errorf("fake details %s: %w", id, places.ErrNotFound)
	}
	return p, nil
}

func (f *fakeClient) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

var costco = places.Place{
	ID: "ChIJcostco", Name: "Costco Wholesale", FormattedAddress: "1 Main St, San Diego, CA 92101, USA",
	Phone: "+1 800-555-1234", Website: "https://www.costco.com/", Types: []string{"store", "warehouse_store"},
	Lat: 32.7, Lng: -117.1,
}

func openTable(t testing.TB) items.Table {
	t.Helper()
	tbl, err := itemssqlite.Open(context.Background(), filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

// clock is a movable clock for CacheOptions.Now.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Now().Unix())
	return c
}
func (c *clock) Now() time.Time            { return time.Unix(c.now.Load(), 0) }
func (c *clock) Advance(d time.Duration)   { c.now.Add(int64(d / time.Second)) }
func quietLog() *slog.Logger               { return slog.New(slog.DiscardHandler) }
func logTo(buf *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(buf, nil)) }

func TestCacheServesRepeatsFromTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openTable(t)
	clk := newClock()
	inner := &fakeClient{results: map[string][]places.Place{"phone:+18005551234": {costco}}}
	c := places.NewCache(inner, tbl, places.CacheOptions{Now: clk.Now, Log: quietLog()})

	for i := range 3 {
		got, err := c.FindByPhone(ctx, "+18005551234")
		if err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
		if len(got) != 1 || got[0].ID != costco.ID || got[0].Name != costco.Name || got[0].Lat != costco.Lat ||
			len(got[0].Types) != 2 || got[0].Phone != costco.Phone || got[0].Website != costco.Website {
			t.Fatalf("lookup %d: got %+v, want [%+v]", i, got, costco)
		}
	}
	if calls := inner.Calls(); len(calls) != 1 {
		t.Errorf("inner calls = %v, want one", calls)
	}
	if hits, misses := c.Stats(); hits != 2 || misses != 1 {
		t.Errorf("Stats = %d hits, %d misses; want 2, 1", hits, misses)
	}

	it, err := tbl.Get(ctx, items.Key{PK: "PLACES#PHONE", SK: "VALUE#+18005551234"})
	if err != nil {
		t.Fatalf("cache item: %v", err)
	}
	if it["hit_count"] != int64(2) {
		t.Errorf("hit_count = %v, want 2", it["hit_count"])
	}
	if it["last_hit_at"] != clk.Now().UTC().Format(time.RFC3339) {
		t.Errorf("last_hit_at = %v", it["last_hit_at"])
	}
	if want := clk.Now().Add(places.DefaultTTL).Unix(); it[items.AttrTTL] != want {
		t.Errorf("%s = %v, want %d (30 days)", items.AttrTTL, it[items.AttrTTL], want)
	}
	for attr, want := range map[string]any{
		"TYPE": "PLACES_CACHE", "search_type": "PHONE", "search_value": "+18005551234",
		"place_id": costco.ID, "GSI1PK": "PLACE_ID", "GSI1SK": "PLACE_ID#" + costco.ID, "place_count": int64(1),
	} {
		if it[attr] != want {
			t.Errorf("%s = %v, want %v", attr, it[attr], want)
		}
	}
}

func TestCacheKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		lookups    []func(*places.Cache) error
		wantCalls  []string
		wantKey    items.Key
		wantStored string // search_value
	}{
		{
			name: "addresses differing in case and spacing share an entry",
			lookups: []func(*places.Cache) error{
				func(c *places.Cache) error {
					_, err := c.FindByAddress(context.Background(), " 1 main  st,\tSan Diego ")
					return err
				},
				func(c *places.Cache) error {
					_, err := c.FindByAddress(context.Background(), "1 MAIN ST, SAN DIEGO")
					return err
				},
			},
			wantCalls:  []string{"text:1 MAIN ST, SAN DIEGO"},
			wantKey:    items.Key{PK: "PLACES#ADDRESS", SK: "VALUE#1 MAIN ST, SAN DIEGO"},
			wantStored: "1 MAIN ST, SAN DIEGO",
		},
		{
			name: "free text is kept apart from addresses",
			lookups: []func(*places.Cache) error{
				func(c *places.Cache) error {
					_, err := c.FindByText(context.Background(), "costco  wholesale")
					return err
				},
				func(c *places.Cache) error {
					_, err := c.FindByText(context.Background(), "Costco Wholesale")
					return err
				},
			},
			wantCalls:  []string{"text:COSTCO WHOLESALE"},
			wantKey:    items.Key{PK: "PLACES#TEXT", SK: "VALUE#COSTCO WHOLESALE"},
			wantStored: "COSTCO WHOLESALE",
		},
		{
			name: "URLs are searched and keyed by host",
			lookups: []func(*places.Cache) error{
				func(c *places.Cache) error {
					_, err := c.FindByURL(context.Background(), "https://www.Costco.com/receipts?id=1")
					return err
				},
				func(c *places.Cache) error { _, err := c.FindByURL(context.Background(), "COSTCO.COM"); return err },
				func(c *places.Cache) error {
					_, err := c.FindByURL(context.Background(), "WWW.COSTCO.COM:443")
					return err
				},
			},
			wantCalls:  []string{"text:costco.com"},
			wantKey:    items.Key{PK: "PLACES#URL", SK: "VALUE#costco.com"},
			wantStored: "costco.com",
		},
		{
			name: "details are keyed by place ID",
			lookups: []func(*places.Cache) error{
				func(c *places.Cache) error { _, err := c.Details(context.Background(), costco.ID); return err },
				func(c *places.Cache) error { _, err := c.Details(context.Background(), costco.ID); return err },
			},
			wantCalls:  []string{"details:" + costco.ID},
			wantKey:    items.Key{PK: "PLACES#ID", SK: "VALUE#" + costco.ID},
			wantStored: costco.ID,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tbl := openTable(t)
			inner := &fakeClient{details: map[string]places.Place{costco.ID: costco}}
			c := places.NewCache(inner, tbl, places.CacheOptions{Log: quietLog()})
			for i, lookup := range tt.lookups {
				if err := lookup(c); err != nil {
					t.Fatalf("lookup %d: %v", i, err)
				}
			}
			if got := inner.Calls(); strings.Join(got, "|") != strings.Join(tt.wantCalls, "|") {
				t.Errorf("inner calls = %q, want %q", got, tt.wantCalls)
			}
			it, err := tbl.Get(context.Background(), tt.wantKey)
			if err != nil {
				t.Fatalf("item %+v: %v", tt.wantKey, err)
			}
			if it["search_value"] != tt.wantStored {
				t.Errorf("search_value = %v, want %q", it["search_value"], tt.wantStored)
			}
		})
	}
}

func TestCacheRejectsBadInput(t *testing.T) {
	t.Parallel()
	inner := &fakeClient{}
	c := places.NewCache(inner, openTable(t), places.CacheOptions{Log: quietLog()})
	ctx := context.Background()
	tests := []struct {
		name   string
		lookup func() error
	}{
		{"phone without plus", func() error { _, err := c.FindByPhone(ctx, "18005551234"); return err }},
		{"phone with punctuation", func() error { _, err := c.FindByPhone(ctx, "+1 (800) 555-1234"); return err }},
		{"empty address", func() error { _, err := c.FindByAddress(ctx, " \t "); return err }},
		{"empty text", func() error { _, err := c.FindByText(ctx, ""); return err }},
		{"URL without host", func() error { _, err := c.FindByURL(ctx, "https:///path"); return err }},
		{"URL without dot", func() error { _, err := c.FindByURL(ctx, "costco"); return err }},
		{"empty ID", func() error { _, err := c.Details(ctx, " "); return err }},
	}
	for _, tt := range tests {
		if err := tt.lookup(); !errors.Is(err, places.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", tt.name, err)
		}
	}
	if calls := inner.Calls(); len(calls) != 0 {
		t.Errorf("inner calls = %v, want none", calls)
	}
}

func TestCacheExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		found     []places.Place
		after     time.Duration
		wantCalls int
	}{
		{"found, within 30 days", []places.Place{costco}, 29 * 24 * time.Hour, 1},
		{"found, after 30 days", []places.Place{costco}, 30*24*time.Hour + time.Second, 2},
		{"nothing found, within 7 days", nil, 6 * 24 * time.Hour, 1},
		{"nothing found, after 7 days", nil, 7*24*time.Hour + time.Second, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := newClock()
			inner := &fakeClient{results: map[string][]places.Place{"text:ACME": tt.found}}
			c := places.NewCache(inner, openTable(t), places.CacheOptions{Now: clk.Now, Log: quietLog()})
			first, err := c.FindByText(ctx, "acme")
			if err != nil || len(first) != len(tt.found) {
				t.Fatalf("first lookup = %v, %v; want %d places", first, err, len(tt.found))
			}
			clk.Advance(tt.after)
			second, err := c.FindByText(ctx, "acme")
			if err != nil || len(second) != len(tt.found) {
				t.Fatalf("second lookup = %v, %v; want %d places", second, err, len(tt.found))
			}
			if calls := inner.Calls(); len(calls) != tt.wantCalls {
				t.Errorf("inner calls = %v, want %d", calls, tt.wantCalls)
			}
		})
	}
}

func TestCacheCustomTTLs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openTable(t)
	clk := newClock()
	inner := &fakeClient{results: map[string][]places.Place{"text:FOUND": {costco}}}
	c := places.NewCache(inner, tbl, places.CacheOptions{TTL: 2 * time.Hour, NegativeTTL: time.Hour, Now: clk.Now, Log: quietLog()})
	for _, text := range []string{"found", "missing"} {
		if _, err := c.FindByText(ctx, text); err != nil {
			t.Fatal(err)
		}
	}
	for sk, want := range map[string]time.Duration{"VALUE#FOUND": 2 * time.Hour, "VALUE#MISSING": time.Hour} {
		it, err := tbl.Get(ctx, items.Key{PK: "PLACES#TEXT", SK: sk})
		if err != nil {
			t.Fatal(err)
		}
		if it[items.AttrTTL] != clk.Now().Add(want).Unix() {
			t.Errorf("%s: TTL %v, want now+%v", sk, it[items.AttrTTL], want)
		}
	}
}

func TestCacheDoesNotCacheErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner := &fakeClient{err: fmt.Errorf("google: %w", places.ErrQuota)}
	c := places.NewCache(inner, openTable(t), places.CacheOptions{Log: quietLog()})
	for range 2 {
		if _, err := c.FindByPhone(ctx, "+18005551234"); !errors.Is(err, places.ErrQuota) {
			t.Fatalf("err = %v, want ErrQuota", err)
		}
	}
	if calls := inner.Calls(); len(calls) != 2 {
		t.Errorf("inner calls = %v, want 2: an error must not be cached", calls)
	}
	if _, misses := c.Stats(); misses != 2 {
		t.Errorf("misses = %d, want 2", misses)
	}
}

func TestCacheDetailsNotFoundIsCached(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner := &fakeClient{}
	c := places.NewCache(inner, openTable(t), places.CacheOptions{Log: quietLog()})
	for i := range 2 {
		if _, err := c.Details(ctx, "ChIJgone"); !errors.Is(err, places.ErrNotFound) || !errors.Is(err, tally.ErrNotFound) {
			t.Fatalf("lookup %d: err = %v, want ErrNotFound", i, err)
		}
	}
	if calls := inner.Calls(); len(calls) != 1 {
		t.Errorf("inner calls = %v, want 1", calls)
	}
}

func TestCacheLongValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openTable(t)
	inner := &fakeClient{}
	c := places.NewCache(inner, tbl, places.CacheOptions{Log: quietLog()})
	prefix := strings.Repeat("É 1234 VERY LONG OCR LINE ", 20)
	a, b := prefix+"A", prefix+"B"
	for _, text := range []string{a, b, a, b} {
		if _, err := c.FindByText(ctx, text); err != nil {
			t.Fatal(err)
		}
	}
	if calls := inner.Calls(); len(calls) != 2 {
		t.Errorf("inner calls = %d, want 2 (one per distinct value)", len(calls))
	}
	got, err := items.QueryAll(ctx, tbl, items.Query{PK: "PLACES#TEXT"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d cache items, want 2", len(got))
	}
	for _, it := range got {
		sk := it.Key().SK
		if len(sk) > len("VALUE#")+128 || !strings.HasPrefix(sk, "VALUE#É 1234") {
			t.Errorf("sort key %q (%d bytes) is not bounded or lost its prefix", sk, len(sk))
		}
		if v, _ := it["search_value"].(string); v != a && v != b {
			t.Errorf("search_value %q is not the full normalized value", v)
		}
	}
}

// failingTable fails every call, as an unreachable DynamoDB would.
type failingTable struct{ items.Table }

var errTableDown = errors.New("table unreachable")

func (failingTable) Get(context.Context, items.Key) (items.Item, error) { return nil, errTableDown }
func (failingTable) Put(context.Context, items.Item, items.Cond) error  { return errTableDown }
func (failingTable) Update(context.Context, items.Key, items.Update) (items.Item, error) {
	return nil, errTableDown
}

func TestCacheFallsBackWhenTableFails(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	inner := &fakeClient{results: map[string][]places.Place{"phone:+18005551234": {costco}}}
	c := places.NewCache(inner, failingTable{}, places.CacheOptions{Log: logTo(&logs)})
	for i := range 2 {
		got, err := c.FindByPhone(context.Background(), "+18005551234")
		if err != nil || len(got) != 1 || got[0].ID != costco.ID {
			t.Fatalf("lookup %d = %v, %v; want the inner client's answer", i, got, err)
		}
	}
	if calls := inner.Calls(); len(calls) != 2 {
		t.Errorf("inner calls = %v, want 2", calls)
	}
	for _, want := range []string{"read failed", "write failed", "table unreachable"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestCacheUnreadableEntryIsRefetched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openTable(t)
	key := items.Key{PK: "PLACES#PHONE", SK: "VALUE#+18005551234"}
	if err := tbl.Put(ctx, items.Item{"PK": key.PK, "SK": key.SK, "search_value": "+18005551234", "places": "{not json"}, items.Cond{}); err != nil {
		t.Fatal(err)
	}
	inner := &fakeClient{results: map[string][]places.Place{"phone:+18005551234": {costco}}}
	c := places.NewCache(inner, tbl, places.CacheOptions{Log: quietLog()})
	got, err := c.FindByPhone(ctx, "+18005551234")
	if err != nil || len(got) != 1 {
		t.Fatalf("lookup = %v, %v", got, err)
	}
	it, err := tbl.Get(ctx, key)
	if err != nil || it["place_id"] != costco.ID {
		t.Errorf("entry not rewritten: %v, %v", it, err)
	}
}

// blockingClient holds every FindByText until release is closed, so that
// concurrent lookups really overlap.
type blockingClient struct {
	fakeClient
	release chan struct{}
}

func (b *blockingClient) FindByText(ctx context.Context, text string) ([]places.Place, error) {
	<-b.release
	return b.fakeClient.FindByText(ctx, text)
}

// countingTable reports each read, to release blockingClient once every
// lookup has missed.
type countingTable struct {
	items.Table
	reads   atomic.Int64
	onReads func(n int64)
}

func (c *countingTable) Get(ctx context.Context, key items.Key) (items.Item, error) {
	it, err := c.Table.Get(ctx, key)
	c.onReads(c.reads.Add(1))
	return it, err
}

func TestCacheConcurrentMissesShareOneRequest(t *testing.T) {
	t.Parallel()
	const lookups = 8
	release := make(chan struct{})
	tbl := &countingTable{Table: openTable(t)}
	tbl.onReads = func(n int64) {
		if n == lookups {
			close(release)
		}
	}
	inner := &blockingClient{fakeClient: fakeClient{results: map[string][]places.Place{"text:ACME": {costco}}}, release: release}
	c := places.NewCache(inner, tbl, places.CacheOptions{Log: quietLog()})
	var wg sync.WaitGroup
	errs := make(chan error, lookups)
	for range lookups {
		wg.Go(func() {
			got, err := c.FindByText(context.Background(), "acme")
			if err == nil && (len(got) != 1 || got[0].ID != costco.ID) {
				err = fmt.Errorf("got %v", got)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Without sharing, all lookups reach the client (it blocks until all
	// have read the table). With it, a late one may rarely lead a second.
	calls := len(inner.Calls())
	if calls >= lookups {
		t.Errorf("inner calls = %d for %d concurrent lookups; want them shared", calls, lookups)
	}
	hits, misses := c.Stats()
	if hits+misses != lookups || misses != int64(calls) {
		t.Errorf("Stats = %d hits, %d misses; want %d in all, %d misses", hits, misses, lookups, calls)
	}
}

func TestCacheCanceledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	inner := &fakeClient{}
	c := places.NewCache(inner, openTable(t), places.CacheOptions{Log: quietLog()})
	if _, err := c.FindByText(ctx, "acme"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if calls := inner.Calls(); len(calls) != 0 {
		t.Errorf("inner calls = %v, want none", calls)
	}
}

func TestValidE164(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"+18005551234":      true,
		"+442071234567":     true,
		"+12345678":         true,  // 8 digits
		"+123456789012345":  true,  // 15 digits
		"+1234567":          false, // 7 digits
		"+1234567890123456": false,
		"+08005551234":      false,
		"18005551234":       false,
		"+1 800 555 1234":   false,
		"":                  false,
		"+1800555123４":      false,
	} {
		if got := places.ValidE164(in); got != want {
			t.Errorf("ValidE164(%q) = %v, want %v", in, got, want)
		}
	}
}
