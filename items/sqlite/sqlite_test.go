package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/items/itemstest"
)

func open(t testing.TB, path string) *Table {
	t.Helper()
	tbl, err := Open(context.Background(), path, items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

func TestConformance(t *testing.T) {
	itemstest.Run(t, func(t *testing.T) items.Table {
		return open(t, filepath.Join(t.TempDir(), "items.db"))
	}, itemstest.Capabilities{TTL: true, ConsistentIndexes: true})
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	tbl := open(t, filepath.Join(t.TempDir(), "items.db"))
	past := time.Now().Add(-time.Minute).Unix()
	var puts []items.Item
	for i := 0; i < 10; i++ {
		it := items.Item{"PK": "ROUTING", "SK": fmt.Sprintf("JOB#%d", i), "TYPE": "ROUTING"}
		if i%2 == 0 {
			it[items.AttrTTL] = past
		}
		puts = append(puts, it)
	}
	if err := tbl.BatchWrite(ctx, puts, nil); err != nil {
		t.Fatal(err)
	}
	n, err := tbl.Sweep(ctx)
	if err != nil || n != 5 {
		t.Fatalf("Sweep = %d, %v; want 5", n, err)
	}
	var rows, gsiRows int
	tbl.db.QueryRow(`SELECT count(*) FROM items`).Scan(&rows)
	tbl.db.QueryRow(`SELECT count(*) FROM gsi`).Scan(&gsiRows)
	if rows != 5 || gsiRows != 5 {
		t.Fatalf("after Sweep: %d items, %d index rows; want 5 and 5", rows, gsiRows)
	}
	if n, err := tbl.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v", n, err)
	}
}

// TestWritesReplaceExpired: a write over an expired item drops its index
// rows, so the old version never reappears in an index.
func TestWritesReplaceExpired(t *testing.T) {
	ctx := context.Background()
	tbl := open(t, filepath.Join(t.TempDir(), "items.db"))
	k := items.Key{PK: "P", SK: "S"}
	old := items.Item{"PK": k.PK, "SK": k.SK, "GSI1PK": "OLD", "GSI1SK": "1", items.AttrTTL: time.Now().Add(-time.Hour).Unix()}
	if err := tbl.Put(ctx, old, items.Cond{}); err != nil {
		t.Fatal(err)
	}
	got, err := tbl.Update(ctx, k, items.Update{Expr: "SET GSI2PK = :v, GSI2SK = :v", Values: map[string]any{":v": "NEW"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, has := got["GSI1PK"]; has {
		t.Fatalf("update of an expired item kept its attributes: %v", got)
	}
	var n int
	tbl.db.QueryRow(`SELECT count(*) FROM gsi WHERE idx = 'GSI1'`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d GSI1 rows left for a replaced expired item", n)
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	tbl := open(t, filepath.Join(t.TempDir(), "items.db"))
	for i := 0; i < 3; i++ {
		if err := tbl.Put(ctx, items.Item{"PK": "P", "SK": strconv.Itoa(i), "GSI1PK": "G", "GSI1SK": "x"}, items.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := tbl.Query(ctx, items.Query{PK: "P", Limit: 1})
	if err != nil || page.NextToken == "" {
		t.Fatalf("first page: %v, %v", page, err)
	}
	bad := []items.Query{
		{PK: "P", Token: "%%%"},
		{PK: "P", Token: "e30"}, // {}
		{PK: "Q", Token: page.NextToken},
		{Index: "GSI1", PK: "P", Token: page.NextToken},
	}
	for _, q := range bad {
		if _, err := tbl.Query(ctx, q); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("Query(%+v) error %v, want ErrInvalidArgument", q, err)
		}
	}
	// Equal index sort keys: pages still visit every item once.
	got := map[string]bool{}
	q := items.Query{Index: "GSI1", PK: "G", Limit: 1}
	for {
		page, err := tbl.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			got[it.Key().SK] = true
		}
		if page.NextToken == "" {
			break
		}
		q.Token = page.NextToken
	}
	if len(got) != 3 {
		t.Fatalf("paged GSI1 with equal sort keys: %v", got)
	}
}

func TestQueryUsesIndexes(t *testing.T) {
	tbl := open(t, filepath.Join(t.TempDir(), "items.db"))
	tok := &pageToken{ISK: "a", PK: "b", SK: "c"}
	for _, q := range []items.Query{
		{PK: "P", SK: items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#"}},
		{PK: "P", SK: items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#"}, Reverse: true},
		{Index: "GSI1", PK: "P", SK: items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#"}},
		{Index: "GSITYPE", PK: "P"},
	} {
		for _, tk := range []*pageToken{nil, tok} {
			s, args := buildQuery(q, tk, 10)
			rows, err := tbl.db.Query("EXPLAIN QUERY PLAN "+s, append(args, 0)...)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id, parent, unused int
				var detail string
				rows.Scan(&id, &parent, &unused, &detail)
				if len(detail) >= 4 && detail[:4] == "SCAN" || contains(detail, "TEMP B-TREE") {
					t.Errorf("query %+v token %v: plan step %q is not an index search", q, tk != nil, detail)
				}
			}
			rows.Close()
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestReopenRebuildsIndexes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "items.db")
	tbl, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Put(ctx, items.Item{"PK": "P", "SK": "S", "TYPE": "WORD"}, items.Cond{}); err != nil {
		t.Fatal(err)
	}
	tbl.Close()
	tbl = open(t, path)
	got, err := items.QueryAll(ctx, tbl, items.Query{Index: "GSITYPE", PK: "WORD"})
	if err != nil || len(got) != 1 {
		t.Fatalf("GSITYPE after reopening with it declared = %v, %v", got, err)
	}
	if _, err := Open(ctx, path, []items.Index{{Name: "A", PK: "x"}, {Name: "A", PK: "y"}}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Fatalf("Open with duplicate index names: %v", err)
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	in := items.Item{"PK": "P", "SK": "S", "s": "quote\" back\\ ctl\x01\n\t é 😀", "n": items.Number("-1.5E-30"),
		"b": []byte{0, 255}, "l": []any{nil, true, false, []any{}}, "m": map[string]any{"": "empty key"}}
	out, err := decodeItem(encodeItem(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out) != fmt.Sprint(in) {
		t.Fatalf("round trip:\n got %v\nwant %v", out, in)
	}
	for _, bad := range []string{`[]`, `{"a":1}`, `{"a":{"S":1}}`, `{"a":{"X":"y"}}`, `{"a":{"S":"x","N":"1"}}`, `{"a":{"B":"!"}}`} {
		if _, err := decodeItem([]byte(bad)); err == nil {
			t.Errorf("decodeItem(%s) succeeded", bad)
		}
	}
}

// TestTwoGoroutinesTwoTables: two Table values on one file (as two
// processes would have) never lose a conditional increment.
func TestTwoGoroutinesTwoTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "items.db")
	a, b := open(t, path), open(t, path)
	k := items.Key{PK: "COUNTER", SK: "COUNTER"}
	if err := a.Put(context.Background(), items.Item{"PK": k.PK, "SK": k.SK, "n": 0}, items.Cond{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, tbl := range []*Table{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := increment(context.Background(), tbl, k, 25); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, _ := b.Get(context.Background(), k); got["n"] != int64(50) {
		t.Fatalf("counter = %v, want 50", got["n"])
	}
}

// increment adds one to k's n, times times, by optimistic read-then-
// conditional-write, retrying when another writer got in first.
func increment(ctx context.Context, tbl items.Table, k items.Key, times int) error {
	for i := 0; i < times; {
		cur, err := tbl.Get(ctx, k)
		if err != nil {
			return err
		}
		n := cur["n"].(int64)
		_, err = tbl.Update(ctx, k, items.Update{Expr: "SET n = :next", Cond: "n = :cur",
			Values: map[string]any{":next": n + 1, ":cur": n}})
		switch {
		case err == nil:
			i++
		case !errors.Is(err, tally.ErrConditionFailed):
			return err
		}
	}
	return nil
}

// TestTwoProcesses re-runs this test binary as two helper processes that
// increment one counter in one file at once; no update may be lost.
func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "items.db")
	tbl := open(t, path)
	k := items.Key{PK: "COUNTER", SK: "COUNTER"}
	if err := tbl.Put(context.Background(), items.Item{"PK": k.PK, "SK": k.SK, "n": 0}, items.Cond{}); err != nil {
		t.Fatal(err)
	}
	const procs, each = 2, 30
	var cmds []*exec.Cmd
	for i := 0; i < procs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "TALLY_ITEMS_HELPER_DB="+path, "TALLY_ITEMS_HELPER_N="+strconv.Itoa(each))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper process: %v", err)
		}
	}
	got, err := tbl.Get(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	if got["n"] != int64(procs*each) {
		t.Fatalf("counter = %v after %d processes × %d increments", got["n"], procs, each)
	}
}

// TestHelperProcess is TestTwoProcesses' child; it does nothing when run
// directly.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv("TALLY_ITEMS_HELPER_DB")
	if path == "" {
		return // only does something as a child of TestTwoProcesses
	}
	n, _ := strconv.Atoi(os.Getenv("TALLY_ITEMS_HELPER_N"))
	tbl := open(t, path)
	if err := increment(context.Background(), tbl, items.Key{PK: "COUNTER", SK: "COUNTER"}, n); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecode: a corrupt stored item is an error, never a panic, and what
// decodes re-encodes to something that decodes the same.
func FuzzDecode(f *testing.F) {
	f.Add(encodeItem(nil, items.Item{"PK": "P", "SK": "S", "n": items.Number("1.5"), "l": []any{nil, true, []byte{1}}, "m": map[string]any{"s": "\u00e9\n"}}))
	f.Add([]byte(`{"a":{"S":"\ud83d\ude00 \u0041"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		it, err := decodeItem(data)
		if err != nil {
			return
		}
		again, err := decodeItem(encodeItem(nil, it))
		if err != nil {
			t.Fatalf("re-encoded item does not decode: %v", err)
		}
		if fmt.Sprint(again) != fmt.Sprint(it) {
			t.Fatalf("round trip changed %v to %v", it, again)
		}
	})
}

// TestPutAll writes more than a BatchWrite's worth in one call, and again
// (idempotent).
func TestPutAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl, err := Open(ctx, filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	var puts []items.Item
	for i := range 3*items.MaxBatchWrite + 7 {
		puts = append(puts, items.Item{items.AttrPK: "P", items.AttrSK: fmt.Sprintf("S%04d", i), items.AttrType: "T", "n": i})
	}
	for range 2 {
		if err := items.PutAll(ctx, tbl, puts); err != nil {
			t.Fatal(err)
		}
	}
	all, err := items.QueryAll(ctx, tbl, items.Query{PK: "P"})
	if err != nil || len(all) != len(puts) {
		t.Fatalf("query = %d items, %v; want %d", len(all), err, len(puts))
	}
	bad := append(puts[:1:1], items.Item{items.AttrPK: "", items.AttrSK: "x"})
	if err := items.PutAll(ctx, tbl, bad); err == nil {
		t.Error("PutAll with an item without PK succeeded")
	}
}
