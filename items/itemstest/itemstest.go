// Package itemstest is the conformance suite every items.Table adapter
// passes: the embedded SQLite adapter in every test run, the DynamoDB
// adapter against the AWS emulator (moto_server). It asserts only what
// DynamoDB itself does, so code that passes against one adapter works on
// the other.
//
// The table must have been created with items.DefaultIndexes (GSI1–GSI4 on
// GSInPK/GSInSK, GSITYPE on TYPE, TTL on time_to_live). Subtests run in
// parallel and each writes only under its own random partition-key prefix
// (and TYPE values), so the suite can share one table with other tests.
package itemstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

// Capabilities describe what an adapter guarantees beyond what DynamoDB
// does, enabling the subtests that rely on it.
type Capabilities struct {
	// TTL means an item whose time_to_live is in the past is hidden at once
	// from Get, BatchGet and Query and is absent to conditions. DynamoDB
	// deletes expired items only eventually (and returns them until then),
	// so an AWS adapter earns this by filtering on read and adding the
	// expiry to its conditions; leave it false when it cannot (or when the
	// emulator lacks TTL).
	TTL bool
	// ConsistentIndexes means an index query sees every write that returned
	// before it. DynamoDB's global secondary indexes are eventually
	// consistent, so without it the suite retries index queries for a few
	// seconds before failing.
	ConsistentIndexes bool
}

// Run runs the suite; newTable returns the table under test, created with
// items.DefaultIndexes, and arranges its cleanup with t.Cleanup. It is
// called once per subtest and may return the same shared table each time.
func Run(t *testing.T, newTable func(t *testing.T) items.Table, caps Capabilities) {
	run := randHex()
	setup := func(t *testing.T) (context.Context, *testing.T, items.Table, string) {
		t.Parallel()
		name := strings.NewReplacer("/", "-", "#", "-").Replace(t.Name())
		return context.Background(), t, newTable(t), fmt.Sprintf("itemstest-%s-%s#", run, name)
	}
	s := &suite{caps: caps}

	t.Run("RoundTripEveryType", func(t *testing.T) { s.roundTrip(setup(t)) })
	t.Run("GetMissing", func(t *testing.T) { s.getMissing(setup(t)) })
	t.Run("PutReplaces", func(t *testing.T) { s.putReplaces(setup(t)) })
	t.Run("PutCreateOnce", func(t *testing.T) { s.putCreateOnce(setup(t)) })
	t.Run("Conditions", func(t *testing.T) { s.conditions(setup(t)) })
	t.Run("ConditionalDelete", func(t *testing.T) { s.conditionalDelete(setup(t)) })
	t.Run("UpdateActions", func(t *testing.T) { s.updateActions(setup(t)) })
	t.Run("UpdateCreatesMissing", func(t *testing.T) { s.updateCreates(setup(t)) })
	t.Run("ConditionalUpdate", func(t *testing.T) { s.conditionalUpdate(setup(t)) })
	t.Run("BatchWrite", func(t *testing.T) { s.batchWrite(setup(t)) })
	t.Run("BatchGet", func(t *testing.T) { s.batchGet(setup(t)) })
	t.Run("QueryTable", func(t *testing.T) { s.queryTable(setup(t)) })
	t.Run("QueryPagination", func(t *testing.T) { s.queryPagination(setup(t)) })
	t.Run("QueryIndexes", func(t *testing.T) { s.queryIndexes(setup(t)) })
	t.Run("QueryTypeIndex", func(t *testing.T) { s.queryTypeIndex(setup(t)) })
	t.Run("TTL", func(t *testing.T) {
		if !caps.TTL {
			t.Skip("adapter does not hide expired items at once (Capabilities.TTL)")
		}
		s.ttl(setup(t))
	})
	t.Run("TransactWrite", func(t *testing.T) { s.transactWrite(setup(t)) })
	t.Run("TransactWriteLimits", func(t *testing.T) { s.transactLimits(setup(t)) })
	t.Run("InvalidArguments", func(t *testing.T) { s.invalid(setup(t)) })
	t.Run("ConcurrentOptimisticIncrements", func(t *testing.T) { s.concurrentIncrements(setup(t)) })
	t.Run("ConcurrentAtomicAdds", func(t *testing.T) { s.concurrentAdds(setup(t)) })
}

type suite struct {
	caps Capabilities
}

func randHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func put(ctx context.Context, t *testing.T, tbl items.Table, it items.Item) {
	t.Helper()
	if err := tbl.Put(ctx, it, items.Cond{}); err != nil {
		t.Fatalf("Put(%v): %v", it.Key(), err)
	}
}

func get(ctx context.Context, t *testing.T, tbl items.Table, k items.Key) items.Item {
	t.Helper()
	it, err := tbl.Get(ctx, k)
	if err != nil {
		t.Fatalf("Get(%v): %v", k, err)
	}
	return it
}

func wantMissing(ctx context.Context, t *testing.T, tbl items.Table, k items.Key) {
	t.Helper()
	if it, err := tbl.Get(ctx, k); !errors.Is(err, tally.ErrNotFound) {
		t.Fatalf("Get(%v) = %v, %v; want tally.ErrNotFound", k, it, err)
	}
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("%s: error %v, want tally.ErrInvalidArgument", what, err)
	}
}

func wantCondFailed(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("%s: error %v, want tally.ErrConditionFailed", what, err)
	}
}

func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

func (s *suite) roundTrip(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	in := items.Item{
		"PK": p + "IMAGE#1", "SK": "RECEIPT#00001",
		"str":     "WALMART 收据 été",
		"empty":   "",
		"int":     42,
		"neg":     int64(-7),
		"big":     int64(1) << 62,
		"float":   12.5,
		"tenth":   0.1,
		"whole":   3.0,
		"yes":     true,
		"no":      false,
		"nothing": nil,
		"bin":     []byte{0, 1, 2, 0xff},
		"list":    []any{"a", 1, 2.5, true, nil, []any{"nested"}},
		"map":     map[string]any{"k": "v", "n": 1, "deep": map[string]any{"l": []any{map[string]any{"x": "y"}}}},
		"nolist":  []any{},
		"nomap":   map[string]any{},
	}
	put(ctx, t, tbl, in)
	want := items.Item{
		"PK": p + "IMAGE#1", "SK": "RECEIPT#00001",
		"str":     "WALMART 收据 été",
		"empty":   "",
		"int":     int64(42),
		"neg":     int64(-7),
		"big":     int64(1) << 62,
		"float":   12.5,
		"tenth":   0.1,
		"whole":   int64(3),
		"yes":     true,
		"no":      false,
		"nothing": nil,
		"bin":     []byte{0, 1, 2, 0xff},
		"list":    []any{"a", int64(1), 2.5, true, nil, []any{"nested"}},
		"map":     map[string]any{"k": "v", "n": int64(1), "deep": map[string]any{"l": []any{map[string]any{"x": "y"}}}},
		"nolist":  []any{},
		"nomap":   map[string]any{},
	}
	wantEqual(t, "Get after Put", get(ctx, t, tbl, in.Key()), want)
}

func (s *suite) getMissing(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	wantMissing(ctx, t, tbl, items.Key{PK: p + "IMAGE#none", SK: "IMAGE"})
	put(ctx, t, tbl, items.Item{"PK": p + "IMAGE#1", "SK": "IMAGE"})
	wantMissing(ctx, t, tbl, items.Key{PK: p + "IMAGE#1", SK: "LINE#00001"})
}

func (s *suite) putReplaces(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	k := items.Key{PK: p + "IMAGE#1", SK: "IMAGE"}
	put(ctx, t, tbl, items.Item{"PK": k.PK, "SK": k.SK, "a": "1", "b": "2"})
	put(ctx, t, tbl, items.Item{"PK": k.PK, "SK": k.SK, "a": "3"})
	wantEqual(t, "item after second Put", get(ctx, t, tbl, k), items.Item{"PK": k.PK, "SK": k.SK, "a": "3"})
}

func (s *suite) putCreateOnce(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	once := items.Cond{Expr: "attribute_not_exists(PK)"}
	first := items.Item{"PK": p + "LOCK#lines#compaction", "SK": "LOCK", "owner": "a"}
	if err := tbl.Put(ctx, first, once); err != nil {
		t.Fatalf("first create: %v", err)
	}
	second := items.Item{"PK": first["PK"], "SK": "LOCK", "owner": "b"}
	wantCondFailed(t, "second create", tbl.Put(ctx, second, once))
	wantEqual(t, "item after failed create", get(ctx, t, tbl, first.Key()), first)

	// attribute_exists: replace only an existing item.
	exists := items.Cond{Expr: "attribute_exists(PK)"}
	wantCondFailed(t, "replace missing", tbl.Put(ctx, items.Item{"PK": p + "other", "SK": "LOCK"}, exists))
	wantMissing(ctx, t, tbl, items.Key{PK: p + "other", SK: "LOCK"})
	if err := tbl.Put(ctx, second, exists); err != nil {
		t.Fatalf("replace existing: %v", err)
	}
	wantEqual(t, "item after replace", get(ctx, t, tbl, first.Key()), second)
}

func (s *suite) conditions(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	base := items.Item{
		"PK": p + "IMAGE#1", "SK": "RECEIPT#00001", "TYPE": p + "RECEIPT",
		"n": 5, "ten": 10, "s": "hello", "l": []any{"a", "b", "c"}, "m": map[string]any{"k": "v"},
	}
	v := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		expr   string
		names  map[string]string
		values map[string]any
		want   bool
	}{
		{"attribute_exists(PK)", nil, nil, true},
		{"attribute_not_exists(PK)", nil, nil, false},
		{"attribute_exists(nope)", nil, nil, false},
		{"attribute_not_exists(nope)", nil, nil, true},
		{"n = :v", nil, v(":v", 5), true},
		{"n = :v", nil, v(":v", 6), false},
		{"n = :v", nil, v(":v", "5"), false}, // a string never equals a number
		{"n <> :v", nil, v(":v", 6), true},
		{"n <> :v", nil, v(":v", 5), false},
		{"n < :v", nil, v(":v", 6), true},
		{"n < :v", nil, v(":v", 5), false},
		{"n <= :v", nil, v(":v", 5), true},
		{"n <= :v", nil, v(":v", 4.5), false},
		{"n > :v", nil, v(":v", 4), true},
		{"n > :v", nil, v(":v", 5), false},
		{"n >= :v", nil, v(":v", 5), true},
		{"n >= :v", nil, v(":v", 6), false},
		{"ten > :v", nil, v(":v", 9), true}, // numeric, not lexical
		{"s < :v", nil, v(":v", "world"), true},
		{"s > :v", nil, v(":v", "world"), false},
		{"n = :a AND s = :b", nil, v(":a", 5, ":b", "hello"), true},
		{"n = :a AND s = :b", nil, v(":a", 5, ":b", "bye"), false},
		{"n = :a OR s = :b", nil, v(":a", 6, ":b", "hello"), true},
		{"n = :a OR s = :b", nil, v(":a", 6, ":b", "bye"), false},
		{"NOT n = :v", nil, v(":v", 5), false},
		{"NOT (n = :v)", nil, v(":v", 6), true},
		{"n = :x OR n = :y AND s = :z", nil, v(":x", 5, ":y", 0, ":z", "bye"), true}, // AND binds tighter
		{"(n = :x OR n = :y) AND s = :z", nil, v(":x", 5, ":y", 0, ":z", "bye"), false},
		{"n BETWEEN :lo AND :hi", nil, v(":lo", 1, ":hi", 9), true},
		{"n BETWEEN :lo AND :hi", nil, v(":lo", 5, ":hi", 5), true},
		{"n BETWEEN :lo AND :hi", nil, v(":lo", 6, ":hi", 9), false},
		{"n IN (:a, :b)", nil, v(":a", 4, ":b", 5), true},
		{"n IN (:a, :b)", nil, v(":a", 4, ":b", 6), false},
		{"begins_with(s, :v)", nil, v(":v", "he"), true},
		{"begins_with(s, :v)", nil, v(":v", "lo"), false},
		{"contains(s, :v)", nil, v(":v", "ell"), true},
		{"contains(l, :v)", nil, v(":v", "b"), true},
		{"contains(l, :v)", nil, v(":v", "z"), false},
		{"size(l) = :v", nil, v(":v", 3), true},
		{"size(s) > :v", nil, v(":v", 10), false},
		{"attribute_type(n, :v)", nil, v(":v", "N"), true},
		{"attribute_type(n, :v)", nil, v(":v", "S"), false},
		{"#t = :v", map[string]string{"#t": "TYPE"}, v(":v", p+"RECEIPT"), true},
		{"m.k = :v", nil, v(":v", "v"), true},
		{"l[1] = :v", nil, v(":v", "b"), true},
		{"#m.#k = :v", map[string]string{"#m": "m", "#k": "k"}, v(":v", "x"), false},
	}
	for _, tt := range tests {
		put(ctx, t, tbl, base)
		next := items.Item{}
		for k, v := range base {
			next[k] = v
		}
		next["written"] = true
		err := tbl.Put(ctx, next, items.Cond{Expr: tt.expr, Names: tt.names, Values: tt.values})
		got := get(ctx, t, tbl, base.Key())
		_, written := got["written"]
		switch {
		case tt.want && (err != nil || !written):
			t.Errorf("Put if %s %v: error %v, written %v; want it to hold", tt.expr, tt.values, err, written)
		case !tt.want && (!errors.Is(err, tally.ErrConditionFailed) || written):
			t.Errorf("Put if %s %v: error %v, written %v; want tally.ErrConditionFailed and no write", tt.expr, tt.values, err, written)
		}
	}
}

func (s *suite) conditionalDelete(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	k := items.Key{PK: p + "IMAGE#1", SK: "OCR_JOB#1"}
	put(ctx, t, tbl, items.Item{"PK": k.PK, "SK": k.SK, "state": "PENDING"})
	wantCondFailed(t, "delete if done", tbl.Delete(ctx, k, items.Cond{
		Expr: "#s = :done", Names: map[string]string{"#s": "state"}, Values: map[string]any{":done": "DONE"}}))
	get(ctx, t, tbl, k)
	if err := tbl.Delete(ctx, k, items.Cond{
		Expr: "#s = :p", Names: map[string]string{"#s": "state"}, Values: map[string]any{":p": "PENDING"}}); err != nil {
		t.Fatalf("delete if pending: %v", err)
	}
	wantMissing(ctx, t, tbl, k)
	if err := tbl.Delete(ctx, k, items.Cond{}); err != nil {
		t.Fatalf("delete missing without condition: %v", err)
	}
	wantCondFailed(t, "delete missing if exists", tbl.Delete(ctx, k, items.Cond{Expr: "attribute_exists(PK)"}))
}

func (s *suite) updateActions(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	k := items.Key{PK: p + "IMAGE#1", SK: "RECEIPT#00001"}
	put(ctx, t, tbl, items.Item{"PK": k.PK, "SK": k.SK, "n": 1, "gone": "x", "labels": []any{"A"},
		"geo": map[string]any{"x": 0.5, "y": 0.25}})
	got, err := tbl.Update(ctx, k, items.Update{
		Expr: "SET n = n + :one, balance = if_not_exists(balance, :zero) - :one, labels = list_append(labels, :more), " +
			"geo.y = :y, fresh = :s REMOVE gone ADD hits :one",
		Values: map[string]any{":one": 1, ":zero": 0, ":more": []any{"B", "C"}, ":y": 0.75, ":s": "new"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := items.Item{"PK": k.PK, "SK": k.SK, "n": int64(2), "balance": int64(-1), "labels": []any{"A", "B", "C"},
		"geo": map[string]any{"x": 0.5, "y": 0.75}, "fresh": "new", "hits": int64(1)}
	wantEqual(t, "returned item", got, want)
	wantEqual(t, "stored item", get(ctx, t, tbl, k), want)

	// A counter: ten increments, each from the value the last one left.
	for i := 0; i < 10; i++ {
		if got, err = tbl.Update(ctx, k, items.Update{Expr: "ADD hits :one", Values: map[string]any{":one": 1}}); err != nil {
			t.Fatal(err)
		}
	}
	wantEqual(t, "hits after ten ADDs", got["hits"], int64(11))

	// Fractions stay exact.
	got, err = tbl.Update(ctx, k, items.Update{Expr: "SET price = :a + :b", Values: map[string]any{":a": 0.1, ":b": 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "0.1 + 0.2", got["price"], 0.3)

	// Names through placeholders, list element REMOVE.
	got, err = tbl.Update(ctx, k, items.Update{Expr: "SET #t = :t REMOVE labels[0]",
		Names: map[string]string{"#t": "TYPE"}, Values: map[string]any{":t": p + "RECEIPT"}})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "TYPE", got["TYPE"], p+"RECEIPT")
	wantEqual(t, "labels after REMOVE labels[0]", got["labels"], []any{"B", "C"})

	// A type mismatch is the caller's error and changes nothing.
	_, err = tbl.Update(ctx, k, items.Update{Expr: "SET fresh = fresh + :one", Values: map[string]any{":one": 1}})
	wantInvalid(t, "string + number", err)
	_, err = tbl.Update(ctx, k, items.Update{Expr: "SET x = nope + :one", Values: map[string]any{":one": 1}})
	wantInvalid(t, "missing operand", err)
	wantEqual(t, "fresh after failed updates", get(ctx, t, tbl, k)["fresh"], "new")
}

func (s *suite) updateCreates(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	k := items.Key{PK: p + "IMAGE#1", SK: "RECEIPT#00001#COMPACTION_RUN#1"}
	got, err := tbl.Update(ctx, k, items.Update{
		Expr:   "SET #s = :s, attempts = if_not_exists(attempts, :zero) + :one",
		Names:  map[string]string{"#s": "state"},
		Values: map[string]any{":s": "PENDING", ":zero": 0, ":one": 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := items.Item{"PK": k.PK, "SK": k.SK, "state": "PENDING", "attempts": int64(1)}
	wantEqual(t, "returned item", got, want)
	wantEqual(t, "stored item", get(ctx, t, tbl, k), want)
}

func (s *suite) conditionalUpdate(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	k := items.Key{PK: p + "IMAGE#1", SK: "IMAGE"}
	// attribute_exists on a missing item: nothing is created.
	_, err := tbl.Update(ctx, k, items.Update{Expr: "SET a = :a", Cond: "attribute_exists(PK)", Values: map[string]any{":a": 1}})
	wantCondFailed(t, "update missing if exists", err)
	wantMissing(ctx, t, tbl, k)

	put(ctx, t, tbl, items.Item{"PK": k.PK, "SK": k.SK, "version": 1, "a": 0})
	_, err = tbl.Update(ctx, k, items.Update{
		Expr: "SET a = :a, version = :next", Cond: "version = :cur",
		Values: map[string]any{":a": 1, ":next": 3, ":cur": 2},
	})
	wantCondFailed(t, "update with stale version", err)
	wantEqual(t, "item after failed update", get(ctx, t, tbl, k), items.Item{"PK": k.PK, "SK": k.SK, "version": int64(1), "a": int64(0)})

	got, err := tbl.Update(ctx, k, items.Update{
		Expr: "SET a = :a, version = :next", Cond: "version = :cur AND attribute_exists(a)",
		Values: map[string]any{":a": 1, ":next": 2, ":cur": 1},
	})
	if err != nil {
		t.Fatalf("update with current version: %v", err)
	}
	wantEqual(t, "returned item", got, items.Item{"PK": k.PK, "SK": k.SK, "version": int64(2), "a": int64(1)})
}

func (s *suite) batchWrite(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	var puts []items.Item
	for i := 0; i < items.MaxBatchWrite; i++ {
		puts = append(puts, items.Item{"PK": p + "IMAGE#1", "SK": fmt.Sprintf("LINE#%05d", i), "i": i})
	}
	if err := tbl.BatchWrite(ctx, puts, nil); err != nil {
		t.Fatalf("BatchWrite of %d: %v", len(puts), err)
	}
	for _, it := range puts {
		got := get(ctx, t, tbl, it.Key())
		wantEqual(t, "batch-written item", got["i"], int64(it["i"].(int)))
	}

	// Puts and deletes together.
	dels := []items.Key{puts[0].Key(), puts[1].Key()}
	more := []items.Item{{"PK": p + "IMAGE#2", "SK": "IMAGE"}}
	if err := tbl.BatchWrite(ctx, more, dels); err != nil {
		t.Fatal(err)
	}
	wantMissing(ctx, t, tbl, dels[0])
	wantMissing(ctx, t, tbl, dels[1])
	get(ctx, t, tbl, more[0].Key())

	tooMany := append(append([]items.Item(nil), puts...), items.Item{"PK": p + "IMAGE#3", "SK": "IMAGE"})
	wantInvalid(t, "BatchWrite of 26", tbl.BatchWrite(ctx, tooMany, nil))
	wantMissing(ctx, t, tbl, items.Key{PK: p + "IMAGE#3", SK: "IMAGE"})

	dup := []items.Item{{"PK": p + "IMAGE#4", "SK": "IMAGE", "v": 1}, {"PK": p + "IMAGE#4", "SK": "IMAGE", "v": 2}}
	wantInvalid(t, "BatchWrite with a duplicate put", tbl.BatchWrite(ctx, dup, nil))
	wantMissing(ctx, t, tbl, items.Key{PK: p + "IMAGE#4", SK: "IMAGE"})
	wantInvalid(t, "BatchWrite putting and deleting one key",
		tbl.BatchWrite(ctx, dup[:1], []items.Key{{PK: p + "IMAGE#4", SK: "IMAGE"}}))
}

func (s *suite) batchGet(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	var keys []items.Key
	var puts []items.Item
	for i := 0; i < items.MaxBatchGet; i++ {
		k := items.Key{PK: fmt.Sprintf("%sIMAGE#%d", p, i%7), SK: fmt.Sprintf("WORD#%05d", i)}
		keys = append(keys, k)
		if i%5 != 0 { // every fifth key is missing
			puts = append(puts, items.Item{"PK": k.PK, "SK": k.SK, "i": i})
		}
	}
	for len(puts) > 0 {
		n := min(len(puts), items.MaxBatchWrite)
		if err := tbl.BatchWrite(ctx, puts[:n], nil); err != nil {
			t.Fatal(err)
		}
		puts = puts[n:]
	}
	got, err := tbl.BatchGet(ctx, keys)
	if err != nil {
		t.Fatalf("BatchGet of %d: %v", len(keys), err)
	}
	var seen []int
	for _, it := range got {
		i := int(it["i"].(int64))
		if it.Key() != keys[i] {
			t.Fatalf("item %d has key %v, want %v", i, it.Key(), keys[i])
		}
		seen = append(seen, i)
	}
	sort.Ints(seen)
	var want []int
	for i := range keys {
		if i%5 != 0 {
			want = append(want, i)
		}
	}
	wantEqual(t, "items found", seen, want)

	_, err = tbl.BatchGet(ctx, append(keys, items.Key{PK: p + "x", SK: "x"}))
	wantInvalid(t, "BatchGet of 101", err)
	_, err = tbl.BatchGet(ctx, []items.Key{keys[1], keys[1]})
	wantInvalid(t, "BatchGet with a duplicate key", err)
}

// keysOf lists the sort keys of items, in order.
func keysOf(its []items.Item) []string {
	out := []string{}
	for _, it := range its {
		out = append(out, it.Key().SK)
	}
	return out
}

func (s *suite) queryTable(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	pk := p + "IMAGE#1"
	sks := []string{
		"IMAGE", "LINE#00001", "LINE#00002", "RECEIPT#00001", "RECEIPT#00001#LINE#00001",
		"RECEIPT#00001#LINE#00001#WORD#00001", "RECEIPT#00001#LINE#00002", "RECEIPT#00002",
		"RECEIPT#00002#LINE#00001", "z", "é", "\uff5e", "😀",
	}
	var puts []items.Item
	for _, sk := range sks {
		puts = append(puts, items.Item{"PK": pk, "SK": sk})
	}
	if err := tbl.BatchWrite(ctx, puts, nil); err != nil {
		t.Fatal(err)
	}
	put(ctx, t, tbl, items.Item{"PK": p + "IMAGE#2", "SK": "RECEIPT#00001"}) // another partition

	tests := []struct {
		name    string
		sk      items.SKCond
		reverse bool
		want    []string
	}{
		// Sort keys order by UTF-8 bytes: "z" < "é" < U+FF5E < U+1F600.
		{"all", items.SKCond{}, false, sks},
		{"equal", items.SKCond{Op: items.SKEqual, Value: "RECEIPT#00002"}, false, []string{"RECEIPT#00002"}},
		{"equal none", items.SKCond{Op: items.SKEqual, Value: "RECEIPT#00003"}, false, []string{}},
		{"begins_with", items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#00001#"}, false, sks[4:7]},
		{"begins_with LINE", items.SKCond{Op: items.SKBeginsWith, Value: "LINE#"}, false, sks[1:3]},
		{"between", items.SKCond{Op: items.SKBetween, Value: "LINE#00002", Value2: "RECEIPT#00001#LINE#00001"}, false, sks[2:5]},
		{"less", items.SKCond{Op: items.SKLess, Value: "LINE#00002"}, false, sks[:2]},
		{"less or equal", items.SKCond{Op: items.SKLessEq, Value: "LINE#00002"}, false, sks[:3]},
		{"greater", items.SKCond{Op: items.SKGreater, Value: "RECEIPT#00002"}, false, sks[8:]},
		{"greater or equal", items.SKCond{Op: items.SKGreaterEq, Value: "z"}, false, sks[9:]},
		{"reverse", items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#00001"}, true,
			[]string{sks[6], sks[5], sks[4], sks[3]}},
		{"reverse all", items.SKCond{}, true, reversed(sks)},
	}
	for _, tt := range tests {
		got, err := items.QueryAll(ctx, tbl, items.Query{PK: pk, SK: tt.sk, Reverse: tt.reverse})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		wantEqual(t, tt.name, keysOf(got), tt.want)
	}
	got, err := items.QueryAll(ctx, tbl, items.Query{PK: p + "IMAGE#none"})
	if err != nil || len(got) != 0 {
		t.Fatalf("query of an empty partition = %v, %v", got, err)
	}
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// pages follows q page by page with a small Limit and returns the sort
// keys in order; a page may be empty but never over the limit.
func pages(ctx context.Context, t *testing.T, tbl items.Table, q items.Query) []items.Item {
	t.Helper()
	var all []items.Item
	for n := 0; ; n++ {
		if n > 1000 {
			t.Fatal("pagination does not end")
		}
		page, err := tbl.Query(ctx, q)
		if err != nil {
			t.Fatalf("query page %d: %v", n, err)
		}
		if len(page.Items) > q.Limit {
			t.Fatalf("page %d has %d items, over the limit %d", n, len(page.Items), q.Limit)
		}
		all = append(all, page.Items...)
		if page.NextToken == "" {
			return all
		}
		q.Token = page.NextToken
	}
}

func (s *suite) queryPagination(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	pk := p + "IMAGE#1"
	var sks []string
	var puts []items.Item
	for i := 1; i <= 23; i++ {
		sk := fmt.Sprintf("RECEIPT#00001#LINE#%05d", i)
		sks = append(sks, sk)
		puts = append(puts, items.Item{"PK": pk, "SK": sk})
	}
	puts = append(puts, items.Item{"PK": pk, "SK": "IMAGE"})
	if err := tbl.BatchWrite(ctx, puts, nil); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 5, 23, 100} {
		q := items.Query{PK: pk, SK: items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#"}, Limit: limit}
		wantEqual(t, fmt.Sprintf("forward pages of %d", limit), keysOf(pages(ctx, t, tbl, q)), sks)
		q.Reverse = true
		wantEqual(t, fmt.Sprintf("reverse pages of %d", limit), keysOf(pages(ctx, t, tbl, q)), reversed(sks))
	}
	page, err := tbl.Query(ctx, items.Query{PK: pk, Limit: 5})
	if err != nil || len(page.Items) != 5 || page.NextToken == "" {
		t.Fatalf("first page of 5 = %d items, token %q, %v", len(page.Items), page.NextToken, err)
	}
}

func (s *suite) eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if s.caps.ConsistentIndexes || time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *suite) queryIndexes(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	for _, ix := range items.DefaultIndexes {
		if ix.SK == "" {
			continue
		}
		ipk := p + ix.Name + "#LABEL#TOTAL"
		var puts []items.Item
		var want []string
		for i := 0; i < 12; i++ {
			it := items.Item{"PK": fmt.Sprintf("%s%s#IMAGE#%02d", p, ix.Name, i%4), "SK": fmt.Sprintf("WORD#%05d", i)}
			switch i % 3 {
			case 0: // in the index
				isk := fmt.Sprintf("DATE#2024-01-%02d", 30-i)
				it[ix.PK], it[ix.SK] = ipk, isk
				want = append(want, isk)
			case 1: // no index sort key: not in the index
				it[ix.PK] = ipk
			case 2: // another index partition
				it[ix.PK], it[ix.SK] = ipk+"#other", "DATE#2024"
			}
			puts = append(puts, it)
		}
		if err := tbl.BatchWrite(ctx, puts, nil); err != nil {
			t.Fatal(err)
		}
		sort.Strings(want)
		indexKeys := func(its []items.Item) []string {
			out := []string{}
			for _, it := range its {
				out = append(out, it[ix.SK].(string))
			}
			return out
		}
		s.eventually(t, ix.Name+" query", func() error {
			got, err := items.QueryAll(ctx, tbl, items.Query{Index: ix.Name, PK: ipk})
			if err != nil {
				return err
			}
			if g := indexKeys(got); !reflect.DeepEqual(g, want) {
				return fmt.Errorf("index sort keys %v, want %v", g, want)
			}
			return nil
		})
		// Whole items come back, pages and order work as on the table.
		got := pages(ctx, t, tbl, items.Query{Index: ix.Name, PK: ipk, Limit: 2, Reverse: true})
		wantEqual(t, ix.Name+" reverse pages", indexKeys(got), reversed(want))
		if got[0]["PK"] == nil || got[0]["SK"] == nil {
			t.Fatalf("%s returned an item without its table key: %v", ix.Name, got[0])
		}
		got, err := items.QueryAll(ctx, tbl, items.Query{Index: ix.Name, PK: ipk,
			SK: items.SKCond{Op: items.SKBetween, Value: "DATE#2024-01-22", Value2: "DATE#2024-01-27"}})
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, ix.Name+" between", indexKeys(got), []string{"DATE#2024-01-24", "DATE#2024-01-27"})

		// Updating an item moves it in the index; removing the attribute takes it out.
		k := puts[0].Key()
		if _, err := tbl.Update(ctx, k, items.Update{Expr: "SET #sk = :v",
			Names: map[string]string{"#sk": ix.SK}, Values: map[string]any{":v": "DATE#2025"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := tbl.Update(ctx, puts[3].Key(), items.Update{Expr: "REMOVE #pk",
			Names: map[string]string{"#pk": ix.PK}}); err != nil {
			t.Fatal(err)
		}
		want2 := append(append([]string(nil), want[:len(want)-2]...), "DATE#2025") // puts[0] had the last, puts[3] the one before
		s.eventually(t, ix.Name+" query after updates", func() error {
			got, err := items.QueryAll(ctx, tbl, items.Query{Index: ix.Name, PK: ipk})
			if err != nil {
				return err
			}
			if g := indexKeys(got); !reflect.DeepEqual(g, want2) {
				return fmt.Errorf("index sort keys %v, want %v", g, want2)
			}
			return nil
		})
	}
	_, err := tbl.Query(ctx, items.Query{Index: "GSI9", PK: p})
	wantInvalid(t, "unknown index", err)
}

func (s *suite) queryTypeIndex(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	typ := p + "RECEIPT_WORD_LABEL"
	var puts []items.Item
	want := map[items.Key]bool{}
	for i := 0; i < 9; i++ {
		it := items.Item{"PK": fmt.Sprintf("%sIMAGE#%d", p, i), "SK": "RECEIPT#00001#LINE#00001#WORD#00001#LABEL#TOTAL", "TYPE": typ}
		if i%3 == 0 {
			it["TYPE"] = p + "RECEIPT_WORD"
		} else {
			want[it.Key()] = true
		}
		puts = append(puts, it)
	}
	puts = append(puts, items.Item{"PK": p + "IMAGE#x", "SK": "IMAGE"}) // no TYPE: in no index
	if err := tbl.BatchWrite(ctx, puts, nil); err != nil {
		t.Fatal(err)
	}
	s.eventually(t, "GSITYPE query", func() error {
		got := pages(ctx, t, tbl, items.Query{Index: "GSITYPE", PK: typ, Limit: 4})
		seen := map[items.Key]bool{}
		for _, it := range got {
			if seen[it.Key()] {
				return fmt.Errorf("item %v returned twice", it.Key())
			}
			seen[it.Key()] = true
		}
		if !reflect.DeepEqual(seen, want) {
			return fmt.Errorf("items %v, want %v", seen, want)
		}
		return nil
	})
}

func (s *suite) ttl(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	past, future := time.Now().Add(-time.Hour).Unix(), time.Now().Add(time.Hour).Unix()
	expired := items.Item{"PK": p + "IMAGE#1", "SK": "ROUTING#1", "TYPE": p + "ROUTING", "time_to_live": past, "v": "old"}
	live := items.Item{"PK": p + "IMAGE#1", "SK": "ROUTING#2", "TYPE": p + "ROUTING", "time_to_live": future}
	if err := tbl.BatchWrite(ctx, []items.Item{expired, live}, nil); err != nil {
		t.Fatal(err)
	}
	wantMissing(ctx, t, tbl, expired.Key())
	get(ctx, t, tbl, live.Key())
	got, err := tbl.BatchGet(ctx, []items.Key{expired.Key(), live.Key()})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "BatchGet", keysOf(got), []string{"ROUTING#2"})
	all, err := items.QueryAll(ctx, tbl, items.Query{PK: p + "IMAGE#1"})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "Query", keysOf(all), []string{"ROUTING#2"})
	s.eventually(t, "GSITYPE query", func() error {
		all, err := items.QueryAll(ctx, tbl, items.Query{Index: "GSITYPE", PK: p + "ROUTING"})
		if err != nil {
			return err
		}
		if k := keysOf(all); !reflect.DeepEqual(k, []string{"ROUTING#2"}) {
			return fmt.Errorf("keys %v", k)
		}
		return nil
	})
	// To conditions an expired item is absent.
	_, err = tbl.Update(ctx, expired.Key(), items.Update{Expr: "SET v = :v", Cond: "attribute_exists(PK)", Values: map[string]any{":v": "x"}})
	wantCondFailed(t, "update expired if exists", err)
	fresh := items.Item{"PK": expired["PK"], "SK": expired["SK"], "v": "new"}
	if err := tbl.Put(ctx, fresh, items.Cond{Expr: "attribute_not_exists(PK)"}); err != nil {
		t.Fatalf("create over an expired item: %v", err)
	}
	wantEqual(t, "item created over an expired one", get(ctx, t, tbl, fresh.Key()), fresh)
}

func (s *suite) transactWrite(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	pk := p + "IMAGE#1"
	existing := items.Item{"PK": pk, "SK": "RECEIPT#00001", "n": 1}
	doomed := items.Item{"PK": pk, "SK": "RECEIPT#00002"}
	put(ctx, t, tbl, existing)
	put(ctx, t, tbl, doomed)
	newItem := items.Item{"PK": pk, "SK": "RECEIPT#00003", "v": "new"}
	one := map[string]any{":one": 1}

	// One failing condition cancels everything.
	err := tbl.TransactWrite(ctx, []items.Write{
		items.PutWrite(newItem, items.Cond{Expr: "attribute_not_exists(PK)"}),
		items.UpdateWrite(existing.Key(), "ADD n :one", items.Cond{Values: one}),
		items.DeleteWrite(doomed.Key(), items.Cond{}),
		items.CheckWrite(items.Key{PK: pk, SK: "IMAGE"}, items.Cond{Expr: "attribute_exists(PK)"}),
	})
	var tce *items.TxCanceledError
	if !errors.As(err, &tce) || tce.Index != 3 || !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("TransactWrite with a failing check = %v; want *TxCanceledError at index 3 matching ErrConditionFailed", err)
	}
	wantMissing(ctx, t, tbl, newItem.Key())
	wantEqual(t, "existing after cancel", get(ctx, t, tbl, existing.Key()), items.Item{"PK": pk, "SK": "RECEIPT#00001", "n": int64(1)})
	get(ctx, t, tbl, doomed.Key())

	// All hold: all apply.
	put(ctx, t, tbl, items.Item{"PK": pk, "SK": "IMAGE", "state": "OK"})
	err = tbl.TransactWrite(ctx, []items.Write{
		items.PutWrite(newItem, items.Cond{Expr: "attribute_not_exists(PK)"}),
		items.UpdateWrite(existing.Key(), "ADD n :one", items.Cond{Expr: "n = :one", Values: one}),
		items.DeleteWrite(doomed.Key(), items.Cond{Expr: "attribute_exists(PK)"}),
		items.CheckWrite(items.Key{PK: pk, SK: "IMAGE"}, items.Cond{Expr: "#s = :ok",
			Names: map[string]string{"#s": "state"}, Values: map[string]any{":ok": "OK"}}),
	})
	if err != nil {
		t.Fatalf("TransactWrite: %v", err)
	}
	wantEqual(t, "new item", get(ctx, t, tbl, newItem.Key()), newItem)
	wantEqual(t, "updated item", get(ctx, t, tbl, existing.Key())["n"], int64(2))
	wantMissing(ctx, t, tbl, doomed.Key())

	// The first write failing is index 0.
	err = tbl.TransactWrite(ctx, []items.Write{
		items.PutWrite(newItem, items.Cond{Expr: "attribute_not_exists(PK)"}),
		items.PutWrite(items.Item{"PK": pk, "SK": "RECEIPT#00009"}, items.Cond{}),
	})
	if !errors.As(err, &tce) || tce.Index != 0 || !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("TransactWrite failing at 0 = %v", err)
	}
	wantMissing(ctx, t, tbl, items.Key{PK: pk, SK: "RECEIPT#00009"})
}

func (s *suite) transactLimits(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	var ws []items.Write
	for i := 0; i < items.MaxTransact; i++ {
		ws = append(ws, items.PutWrite(items.Item{"PK": p + "IMAGE#1", "SK": fmt.Sprintf("WORD#%05d", i)}, items.Cond{}))
	}
	if err := tbl.TransactWrite(ctx, ws); err != nil {
		t.Fatalf("TransactWrite of %d: %v", len(ws), err)
	}
	over := append(ws, items.PutWrite(items.Item{"PK": p + "IMAGE#2", "SK": "X"}, items.Cond{}))
	wantInvalid(t, "TransactWrite of 101", tbl.TransactWrite(ctx, over))
	wantMissing(ctx, t, tbl, items.Key{PK: p + "IMAGE#2", SK: "X"})

	k := items.Key{PK: p + "IMAGE#3", SK: "X"}
	wantInvalid(t, "two actions on one key", tbl.TransactWrite(ctx, []items.Write{
		items.PutWrite(items.Item{"PK": k.PK, "SK": k.SK}, items.Cond{}),
		items.UpdateWrite(k, "SET a = :a", items.Cond{Values: map[string]any{":a": 1}}),
	}))
	wantMissing(ctx, t, tbl, k)
	wantInvalid(t, "malformed update in a transaction", tbl.TransactWrite(ctx, []items.Write{
		items.UpdateWrite(k, "SET a = ", items.Cond{}),
	}))
}

func (s *suite) invalid(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	pk := p + "IMAGE#1"
	big := strings.Repeat("x", items.MaxItemBytes+1)
	puts := []struct {
		what string
		item items.Item
		cond items.Cond
	}{
		{"no PK", items.Item{"SK": "A"}, items.Cond{}},
		{"no SK", items.Item{"PK": pk}, items.Cond{}},
		{"number PK", items.Item{"PK": 7, "SK": "A"}, items.Cond{}},
		{"empty PK", items.Item{"PK": "", "SK": "A"}, items.Cond{}},
		{"empty SK", items.Item{"PK": pk, "SK": ""}, items.Cond{}},
		{"number index key", items.Item{"PK": pk, "SK": "A", "GSI1PK": 7, "GSI1SK": "x"}, items.Cond{}},
		{"empty index key", items.Item{"PK": pk, "SK": "A", "TYPE": ""}, items.Cond{}},
		{"over 400 KB", items.Item{"PK": pk, "SK": "A", "text": big}, items.Cond{}},
		{"unsupported type", items.Item{"PK": pk, "SK": "A", "ch": make(chan int)}, items.Cond{}},
		{"malformed condition", items.Item{"PK": pk, "SK": "A"}, items.Cond{Expr: "PK = = :v", Values: map[string]any{":v": "x"}}},
		{"unbalanced condition", items.Item{"PK": pk, "SK": "A"}, items.Cond{Expr: "(attribute_exists(PK)"}},
		{"undefined value", items.Item{"PK": pk, "SK": "A"}, items.Cond{Expr: "PK = :nope"}},
		{"undefined name", items.Item{"PK": pk, "SK": "A"}, items.Cond{Expr: "attribute_exists(#nope)"}},
		{"unused value", items.Item{"PK": pk, "SK": "A"}, items.Cond{Expr: "attribute_exists(PK)", Values: map[string]any{":x": 1}}},
		{"unused name", items.Item{"PK": pk, "SK": "A"}, items.Cond{Expr: "attribute_exists(PK)", Names: map[string]string{"#x": "x"}}},
		{"reserved word", items.Item{"PK": pk, "SK": "A"}, items.Cond{Expr: "attribute_exists(status)"}},
	}
	for _, tt := range puts {
		wantInvalid(t, "Put "+tt.what, tbl.Put(ctx, tt.item, tt.cond))
	}
	wantMissing(ctx, t, tbl, items.Key{PK: pk, SK: "A"})
	if err := tbl.Put(ctx, items.Item{"PK": pk, "SK": "B", "text": big[:300*1024]}, items.Cond{}); err != nil {
		t.Errorf("Put of a 300 KB item: %v", err)
	}

	k := items.Key{PK: pk, SK: "C"}
	updates := []struct {
		what string
		u    items.Update
	}{
		{"malformed", items.Update{Expr: "SET a ="}},
		{"key attribute", items.Update{Expr: "SET PK = :v", Values: map[string]any{":v": "x"}}},
		{"undefined value", items.Update{Expr: "SET a = :v"}},
		{"unused value", items.Update{Expr: "SET a = :v", Values: map[string]any{":v": 1, ":w": 2}}},
		{"malformed condition", items.Update{Expr: "SET a = :v", Cond: "a >", Values: map[string]any{":v": 1}}},
		{"overlapping paths", items.Update{Expr: "SET a = :v REMOVE a", Values: map[string]any{":v": 1}}},
		{"number index key", items.Update{Expr: "SET GSI2PK = :v", Values: map[string]any{":v": 1}}},
	}
	for _, tt := range updates {
		_, err := tbl.Update(ctx, k, tt.u)
		wantInvalid(t, "Update "+tt.what, err)
	}
	wantMissing(ctx, t, tbl, k)

	_, err := tbl.Get(ctx, items.Key{PK: "", SK: "A"})
	wantInvalid(t, "Get with empty PK", err)
	wantInvalid(t, "Delete with empty SK", tbl.Delete(ctx, items.Key{PK: pk}, items.Cond{}))
	_, err = tbl.Query(ctx, items.Query{Index: "NOPE", PK: pk})
	wantInvalid(t, "Query of an unknown index", err)
	_, err = tbl.Query(ctx, items.Query{PK: pk, Token: "not a token!"})
	wantInvalid(t, "Query with a garbage token", err)
	wantInvalid(t, "BatchWrite with an invalid item", tbl.BatchWrite(ctx, []items.Item{{"PK": pk}}, nil))
}

func (s *suite) concurrentIncrements(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	const workers, each = 4, 10
	k := items.Key{PK: p + "COUNTER", SK: "COUNTER"}
	put(ctx, t, tbl, items.Item{"PK": k.PK, "SK": k.SK, "n": 0, "version": 0})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				cur, err := tbl.Get(ctx, k)
				if err != nil {
					errs <- err
					return
				}
				v := cur["version"].(int64)
				_, err = tbl.Update(ctx, k, items.Update{
					Expr: "SET n = :n, version = :next", Cond: "version = :cur",
					Values: map[string]any{":n": cur["n"].(int64) + 1, ":next": v + 1, ":cur": v},
				})
				switch {
				case err == nil:
					i++
				case !errors.Is(err, tally.ErrConditionFailed):
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := get(ctx, t, tbl, k)
	wantEqual(t, "counter", got["n"], int64(workers*each))
	wantEqual(t, "version", got["version"], int64(workers*each))
}

func (s *suite) concurrentAdds(ctx context.Context, t *testing.T, tbl items.Table, p string) {
	const workers, each = 4, 10
	k := items.Key{PK: p + "COUNTER", SK: "HITS"}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := tbl.Update(ctx, k, items.Update{Expr: "ADD hits :one", Values: map[string]any{":one": 1}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantEqual(t, "hits", get(ctx, t, tbl, k)["hits"], int64(workers*each))
}
