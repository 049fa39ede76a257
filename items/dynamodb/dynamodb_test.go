package dynamodb_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/awsenv"
	"github.com/tallyhq/tally/internal/awstest"
	"github.com/tallyhq/tally/items"
	itemsdynamodb "github.com/tallyhq/tally/items/dynamodb"
	"github.com/tallyhq/tally/items/itemstest"
	"github.com/tallyhq/tally/lease"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func randHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	sharedOnce sync.Once
	sharedName string
	sharedErr  error
)

// sharedTableName creates, once per test binary, one table on the shared
// moto_server that the conformance suite and the adapter tests share
// (each under its own keys).
func sharedTableName(t testing.TB) string {
	t.Helper()
	srv := awstest.Shared(t)
	sharedOnce.Do(func() {
		sharedName = "tally-items-" + randHex()
		cfg, err := awsenv.Load(context.Background(), srv.Options())
		if err != nil {
			sharedErr = err
			return
		}
		sharedErr = itemsdynamodb.CreateTable(context.Background(), cfg, sharedName, items.DefaultIndexes)
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedName
}

// motoMu makes the shared moto_server handle one request at a time.
// moto serves requests on concurrent threads without making them atomic:
// a TransactWriteItems that is canceled restores every table it touched
// from a copy taken when it began, undoing writes other clients made
// meanwhile, and a conditional write's check and write can interleave
// with another request. DynamoDB does neither, so the tests queue their
// requests to moto (their clients stay concurrent).
var motoMu sync.Mutex

type serialClient struct{ next aws.HTTPClient }

func (c serialClient) Do(req *http.Request) (*http.Response, error) {
	motoMu.Lock()
	defer motoMu.Unlock()
	return c.next.Do(req)
}

// openShared opens the shared table with opts (Table filled in) and cfg
// from the shared server; a non-nil fault client sits between the SDK and
// moto.
func openShared(t testing.TB, opts itemsdynamodb.Options, fault *faultClient) *itemsdynamodb.Table {
	t.Helper()
	opts.Table = sharedTableName(t)
	cfg, err := awsenv.Load(context.Background(), awstest.Shared(t).Options())
	if err != nil {
		t.Fatal(err)
	}
	// Set after Load rather than through awsenv.Options.HTTPClient: with
	// AWS_CA_BUNDLE set, Load accepts only the SDK's own client type.
	var client aws.HTTPClient = serialClient{next: cfg.HTTPClient}
	if fault != nil {
		fault.base = client
		client = fault
	}
	cfg.HTTPClient = client
	tbl, err := itemsdynamodb.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

func TestConformance(t *testing.T) {
	tbl := openShared(t, itemsdynamodb.Options{}, nil)
	if err := tbl.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	// moto's global secondary indexes happen to be read-your-writes, but
	// DynamoDB's are not: claim only what DynamoDB guarantees.
	itemstest.Run(t, func(*testing.T) items.Table { return tbl }, itemstest.Capabilities{TTL: true})
}

// TestConformanceAWS runs the suite against real DynamoDB, on the table
// TALLY_TEST_DYNAMODB_TABLE or, without it, a table it creates and deletes.
func TestConformanceAWS(t *testing.T) {
	if os.Getenv("TALLY_TEST_AWS") != "1" {
		t.Skip("set TALLY_TEST_AWS=1 (and AWS credentials) to run against real DynamoDB")
	}
	ctx := context.Background()
	cfg, err := awsenv.Load(ctx, awsenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	name := os.Getenv("TALLY_TEST_DYNAMODB_TABLE")
	if name == "" {
		name = "tally-itemstest-" + randHex()
		if err := itemsdynamodb.CreateTable(ctx, cfg, name, items.DefaultIndexes); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := dynamodb.NewFromConfig(cfg).DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}); err != nil {
				t.Errorf("delete table %s: %v", name, err)
			}
		})
	}
	tbl, err := itemsdynamodb.New(cfg, itemsdynamodb.Options{Table: name})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Check(ctx); err != nil {
		t.Fatal(err)
	}
	itemstest.Run(t, func(*testing.T) items.Table { return tbl }, itemstest.Capabilities{TTL: true})
}

func TestCreateTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := awstest.Shared(t).Config(t)
	name := "tally-create-" + randHex()
	for i := 0; i < 2; i++ { // the second call finds the table and is fine
		if err := itemsdynamodb.CreateTable(ctx, cfg, name, items.DefaultIndexes); err != nil {
			t.Fatalf("CreateTable call %d: %v", i+1, err)
		}
	}
	client := dynamodb.NewFromConfig(cfg)
	d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	if err != nil {
		t.Fatal(err)
	}
	desc := d.Table
	if desc.TableStatus != types.TableStatusActive {
		t.Errorf("status %s, want ACTIVE", desc.TableStatus)
	}
	if got := keySchema(desc.KeySchema); got != "PK HASH, SK RANGE" {
		t.Errorf("table key %q", got)
	}
	if desc.BillingModeSummary == nil || desc.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode %+v, want PAY_PER_REQUEST", desc.BillingModeSummary)
	}
	if s := desc.StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) || s.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Errorf("stream %+v, want NEW_AND_OLD_IMAGES", s)
	}
	gsis := map[string]string{}
	for _, g := range desc.GlobalSecondaryIndexes {
		gsis[aws.ToString(g.IndexName)] = keySchema(g.KeySchema)
		if g.Projection == nil || g.Projection.ProjectionType != types.ProjectionTypeAll {
			t.Errorf("index %s projection %+v, want ALL", aws.ToString(g.IndexName), g.Projection)
		}
	}
	want := map[string]string{
		"GSI1": "GSI1PK HASH, GSI1SK RANGE", "GSI2": "GSI2PK HASH, GSI2SK RANGE",
		"GSI3": "GSI3PK HASH, GSI3SK RANGE", "GSI4": "GSI4PK HASH, GSI4SK RANGE",
		"GSITYPE": "TYPE HASH",
	}
	if fmt.Sprint(gsis) != fmt.Sprint(want) {
		t.Errorf("indexes %v, want %v", gsis, want)
	}
	for _, a := range desc.AttributeDefinitions {
		if a.AttributeType != types.ScalarAttributeTypeS {
			t.Errorf("attribute %s has type %s, want S", aws.ToString(a.AttributeName), a.AttributeType)
		}
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &name})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != items.AttrTTL {
		t.Errorf("TTL %+v, want ENABLED on %s", d, items.AttrTTL)
	}

	tbl, err := itemsdynamodb.New(cfg, itemsdynamodb.Options{Table: name})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Check(ctx); err != nil {
		t.Errorf("Check on the new table: %v", err)
	}
	// A table without one of the declared indexes fails Check.
	more := append(append([]items.Index(nil), items.DefaultIndexes...), items.Index{Name: "GSI5", PK: "GSI5PK"})
	tbl5, err := itemsdynamodb.New(cfg, itemsdynamodb.Options{Table: name, Indexes: more})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl5.Check(ctx); !errors.Is(err, tally.ErrNotFound) || !strings.Contains(err.Error(), "GSI5") {
		t.Errorf("Check with a missing index = %v, want ErrNotFound naming GSI5", err)
	}
}

func keySchema(ks []types.KeySchemaElement) string {
	var parts []string
	for _, k := range ks {
		parts = append(parts, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	sort.Slice(parts, func(i, j int) bool {
		return strings.HasSuffix(parts[i], "HASH") && !strings.HasSuffix(parts[j], "HASH")
	})
	return strings.Join(parts, ", ")
}

func TestCheckMissingTable(t *testing.T) {
	t.Parallel()
	name := "tally-missing-" + randHex()
	tbl, err := itemsdynamodb.New(awstest.Shared(t).Config(t), itemsdynamodb.Options{Table: name})
	if err != nil {
		t.Fatal(err)
	}
	err = tbl.Check(context.Background())
	if !errors.Is(err, tally.ErrNotFound) || !strings.Contains(err.Error(), name) {
		t.Fatalf("Check on a missing table = %v, want ErrNotFound naming %s", err, name)
	}
	// Item operations on it fail, but never as a missing item.
	if _, err := tbl.Get(context.Background(), items.Key{PK: "a", SK: "b"}); err == nil || errors.Is(err, tally.ErrNotFound) {
		t.Fatalf("Get on a missing table = %v, want an error that is not ErrNotFound", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	cfg := aws.Config{Region: "us-east-1"}
	for _, opts := range []itemsdynamodb.Options{
		{},
		{Table: "t", Indexes: []items.Index{{Name: "", PK: "X"}}},
		{Table: "t", Indexes: []items.Index{{Name: "A", PK: "X"}, {Name: "A", PK: "Y"}}},
	} {
		if _, err := itemsdynamodb.New(cfg, opts); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("New(%+v) = %v, want ErrInvalidArgument", opts, err)
		}
	}
}

// faultClient is an HTTP client that sits between the SDK and moto and
// injects DynamoDB's transient failures.
type faultClient struct {
	base aws.HTTPClient // set by openShared

	throttleOp string // operation whose first throttleN calls are throttled
	throttleN  int

	dropOp   string // BatchWriteItem: the first call loses half its items
	dropAll  bool   // every BatchWriteItem leaves every item unprocessed
	mu       sync.Mutex
	calls    map[string]int
	dropDone bool
}

func newFaultClient() *faultClient {
	return &faultClient{calls: map[string]int{}}
}

func (f *faultClient) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *faultClient) Do(req *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	f.mu.Lock()
	f.calls[op]++
	n := f.calls[op]
	drop := op == "BatchWriteItem" && f.dropOp == op && !f.dropDone
	if drop {
		f.dropDone = true
	}
	f.mu.Unlock()

	switch {
	case op == f.throttleOp && n <= f.throttleN:
		return jsonResponse(req, http.StatusBadRequest, []byte(
			`{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected throttle"}`)), nil
	case op == "BatchWriteItem" && f.dropAll:
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		var in struct{ RequestItems json.RawMessage }
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		return jsonResponse(req, http.StatusOK, []byte(`{"UnprocessedItems":`+string(in.RequestItems)+`}`)), nil
	case drop:
		return f.dropHalf(req)
	}
	return f.base.Do(req)
}

// dropHalf forwards only the first half of a BatchWriteItem's items and
// reports the other half unprocessed, as DynamoDB does under load.
func (f *faultClient) dropHalf(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	var reqItems map[string][]json.RawMessage
	if err := json.Unmarshal(in["RequestItems"], &reqItems); err != nil {
		return nil, err
	}
	dropped := map[string][]json.RawMessage{}
	for table, ws := range reqItems {
		half := len(ws) / 2
		reqItems[table], dropped[table] = ws[:half], ws[half:]
	}
	in["RequestItems"], _ = json.Marshal(reqItems)
	body, _ = json.Marshal(in)
	fwd := req.Clone(req.Context())
	fwd.Body = io.NopCloser(bytes.NewReader(body))
	fwd.ContentLength = int64(len(body))
	fwd.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp, err := f.base.Do(fwd)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(respBody, &out); err != nil {
		return nil, fmt.Errorf("batch write response %q: %w", respBody, err)
	}
	out["UnprocessedItems"], _ = json.Marshal(dropped)
	respBody, _ = json.Marshal(out)
	return jsonResponse(req, resp.StatusCode, respBody), nil
}

func jsonResponse(req *http.Request, status int, body []byte) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-Requestid", "fault-"+randHex())
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}
}

func TestBatchWriteRetriesUnprocessedItems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fc := newFaultClient()
	fc.dropOp = "BatchWriteItem"
	tbl := openShared(t, itemsdynamodb.Options{}, fc)
	pk := "unprocessed-" + randHex()
	var puts []items.Item
	for i := 0; i < items.MaxBatchWrite; i++ {
		puts = append(puts, items.Item{"PK": pk, "SK": fmt.Sprintf("LINE#%05d", i), "i": i})
	}
	if err := tbl.BatchWrite(ctx, puts, nil); err != nil {
		t.Fatal(err)
	}
	if n := fc.count("BatchWriteItem"); n != 2 {
		t.Errorf("%d BatchWriteItem calls, want 2 (the first left half the items unprocessed)", n)
	}
	got, err := items.QueryAll(ctx, tbl, items.Query{PK: pk})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(puts) {
		t.Fatalf("%d items landed, want %d", len(got), len(puts))
	}
	for i, it := range got {
		if it["i"] != int64(i) {
			t.Fatalf("item %d = %v", i, it)
		}
	}
}

func TestBatchWriteGivesUpWhenContextEnds(t *testing.T) {
	t.Parallel()
	fc := newFaultClient()
	fc.dropAll = true
	tbl := openShared(t, itemsdynamodb.Options{}, fc)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := tbl.BatchWrite(ctx, []items.Item{{"PK": "never-" + randHex(), "SK": "A"}}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("BatchWrite that is never processed = %v, want context.DeadlineExceeded", err)
	}
	if n := fc.count("BatchWriteItem"); n < 2 {
		t.Fatalf("%d BatchWriteItem calls, want retries", n)
	}
}

func TestThrottlingIsRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	plain := openShared(t, itemsdynamodb.Options{}, nil)
	k := items.Key{PK: "throttle-" + randHex(), SK: "A"}
	if err := plain.Put(ctx, items.Item{"PK": k.PK, "SK": k.SK, "v": "x"}, items.Cond{}); err != nil {
		t.Fatal(err)
	}
	const throttled = 2
	fc := newFaultClient()
	fc.throttleOp, fc.throttleN = "GetItem", throttled
	tbl := openShared(t, itemsdynamodb.Options{}, fc)
	it, err := tbl.Get(ctx, k)
	if err != nil {
		t.Fatalf("Get after %d throttles: %v", throttled, err)
	}
	if it["v"] != "x" {
		t.Fatalf("Get = %v", it)
	}
	if n := fc.count("GetItem"); n != throttled+1 {
		t.Fatalf("%d GetItem attempts, want %d", n, throttled+1)
	}
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestExpiredItems: an item whose TTL passed is still in DynamoDB (moto
// never deletes it) but is invisible, and updates treat it as missing,
// alone and in transactions.
func TestExpiredItems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	tbl := openShared(t, itemsdynamodb.Options{Now: clk.Now}, nil)
	raw := openShared(t, itemsdynamodb.Options{}, nil) // real clock: sees them live
	pk := "expiring-" + randHex()
	exp := clk.Now().Add(time.Minute).Unix()
	var puts []items.Item
	for _, sk := range []string{"A", "B", "C", "D"} {
		puts = append(puts, items.Item{"PK": pk, "SK": sk, "n": 10, "old": true, "time_to_live": exp})
	}
	if err := tbl.BatchWrite(ctx, puts, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	for _, it := range puts {
		if _, err := tbl.Get(ctx, it.Key()); !errors.Is(err, tally.ErrNotFound) {
			t.Fatalf("Get of expired %v = %v, want ErrNotFound", it.Key(), err)
		}
		if _, err := raw.Get(ctx, it.Key()); err != nil {
			t.Fatalf("the item should still be stored: %v", err)
		}
	}

	one := map[string]any{":one": 1}
	// An update that needs the item fails; one that creates it starts afresh.
	_, err := tbl.Update(ctx, puts[0].Key(), items.Update{Expr: "ADD n :one", Cond: "attribute_exists(PK)", Values: one})
	if !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("update of an expired item if it exists = %v, want ErrConditionFailed", err)
	}
	got, err := tbl.Update(ctx, puts[0].Key(), items.Update{Expr: "ADD n :one", Values: one})
	if err != nil {
		t.Fatal(err)
	}
	want := items.Item{"PK": pk, "SK": "A", "n": int64(1)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("update of an expired item returned %v, want %v", got, want)
	}
	if stored, err := tbl.Get(ctx, puts[0].Key()); err != nil || fmt.Sprint(stored) != fmt.Sprint(want) {
		t.Fatalf("stored after update = %v, %v; want %v", stored, err, want)
	}
	got, err = tbl.Update(ctx, puts[1].Key(), items.Update{Expr: "SET m = :one", Cond: "attribute_not_exists(PK)", Values: one})
	if err != nil || got["old"] != nil || got["m"] != int64(1) {
		t.Fatalf("create-once update over an expired item = %v, %v", got, err)
	}

	// In a transaction: an update of an expired item, a check that it is
	// absent, and a delete of an expired item that requires it to exist.
	err = tbl.TransactWrite(ctx, []items.Write{
		items.UpdateWrite(puts[2].Key(), "ADD n :one", items.Cond{Values: one}),
		items.CheckWrite(puts[3].Key(), items.Cond{Expr: "attribute_not_exists(PK)"}),
	})
	if err != nil {
		t.Fatalf("transaction over expired items: %v", err)
	}
	if it, err := tbl.Get(ctx, puts[2].Key()); err != nil || it["n"] != int64(1) || it["old"] != nil {
		t.Fatalf("item updated in a transaction = %v, %v; want n=1 and nothing else", it, err)
	}
	err = tbl.TransactWrite(ctx, []items.Write{
		items.PutWrite(items.Item{"PK": pk, "SK": "E"}, items.Cond{}),
		items.DeleteWrite(puts[3].Key(), items.Cond{Expr: "attribute_exists(PK)"}),
	})
	var tce *items.TxCanceledError
	if !errors.As(err, &tce) || tce.Index != 1 || !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("delete of an expired item if it exists = %v, want TxCanceledError at 1", err)
	}
	err = tbl.TransactWrite(ctx, []items.Write{
		items.UpdateWrite(puts[3].Key(), "SET n = n + :one", items.Cond{Values: one}),
	})
	if !errors.Is(err, tally.ErrInvalidArgument) {
		t.Fatalf("update reading an attribute of an expired item = %v, want ErrInvalidArgument (the item is missing)", err)
	}

	all, err := items.QueryAll(ctx, tbl, items.Query{PK: pk})
	if err != nil {
		t.Fatal(err)
	}
	var sks []string
	for _, it := range all {
		sks = append(sks, it.Key().SK)
	}
	if fmt.Sprint(sks) != "[A B C]" {
		t.Fatalf("live items %v, want [A B C]", sks)
	}
}

// TestCallerPlaceholdersKeepTheirMeaning: a caller may use the very
// placeholder names the adapter adds for TTL; the adapter picks others.
func TestCallerPlaceholdersKeepTheirMeaning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	tbl := openShared(t, itemsdynamodb.Options{Now: clk.Now}, nil)
	k := items.Key{PK: "clash-" + randHex(), SK: "A"}
	cond := items.Cond{
		Expr:   "attribute_not_exists(PK) OR (#tally_ttl = :tally_now AND #tally_ttl <> :tally_N)",
		Names:  map[string]string{"#tally_ttl": "v"},
		Values: map[string]any{":tally_now": "live", ":tally_N": "N"},
	}
	if err := tbl.Put(ctx, items.Item{"PK": k.PK, "SK": k.SK, "v": "live", "time_to_live": clk.Now().Unix() + 60}, cond); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := tbl.Put(ctx, items.Item{"PK": k.PK, "SK": k.SK, "v": "other"}, cond); err != nil {
		t.Fatalf("replace when v = live: %v", err)
	}
	if err := tbl.Put(ctx, items.Item{"PK": k.PK, "SK": k.SK, "v": "x"}, cond); !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("replace when v = other: %v, want ErrConditionFailed", err)
	}
	got, err := tbl.Update(ctx, k, items.Update{Expr: "SET #tally_ttl = :tally_now", Cond: "#tally_ttl = :tally_N",
		Names: map[string]string{"#tally_ttl": "v"}, Values: map[string]any{":tally_now": "updated", ":tally_N": "other"}})
	if err != nil || got["v"] != "updated" {
		t.Fatalf("update = %v, %v", got, err)
	}
}

func TestPageTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openShared(t, itemsdynamodb.Options{}, nil)
	pk := "tokens-" + randHex()
	if err := tbl.BatchWrite(ctx, []items.Item{{"PK": pk, "SK": "A"}, {"PK": pk, "SK": "B"}}, nil); err != nil {
		t.Fatal(err)
	}
	page, err := tbl.Query(ctx, items.Query{PK: pk, Limit: 1})
	if err != nil || page.NextToken == "" {
		t.Fatalf("first page = %v, %v", page, err)
	}
	for _, q := range []items.Query{
		{PK: pk + "x", Token: page.NextToken},                   // another partition
		{Index: "GSI1", PK: pk, Token: page.NextToken},          // another index
		{PK: pk, Token: page.NextToken[:len(page.NextToken)-2]}, // truncated
	} {
		if _, err := tbl.Query(ctx, q); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("Query(%+v) = %v, want ErrInvalidArgument", q, err)
		}
	}
	page, err = tbl.Query(ctx, items.Query{PK: pk, Limit: 1, Token: page.NextToken})
	if err != nil || len(page.Items) != 1 || page.Items[0]["SK"] != "B" {
		t.Fatalf("second page = %v, %v", page, err)
	}
}

// TestLease runs the lease package, unchanged, on DynamoDB.
func TestLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openShared(t, itemsdynamodb.Options{}, nil)

	race := "race-" + randHex()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := lease.Acquire(ctx, tbl, race, fmt.Sprintf("owner-%d", i), time.Minute, lease.Options{})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, lease.ErrHeld):
				t.Errorf("acquire: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d owners acquired the lease, want 1", wins.Load())
	}

	clk := newClock()
	opts := lease.Options{Now: clk.Now}
	name := "fence-" + randHex()
	a, err := lease.Acquire(ctx, tbl, name, "a", time.Minute, opts)
	if err != nil {
		t.Fatal(err)
	}
	guarded := func(l *lease.Lease, sk string) error {
		return tbl.TransactWrite(ctx, []items.Write{l.Fence(), items.PutWrite(items.Item{"PK": name + "#data", "SK": sk}, items.Cond{})})
	}
	if err := guarded(a, "1"); err != nil {
		t.Fatalf("holder's fenced write: %v", err)
	}
	clk.Advance(2 * time.Minute) // a lapses without renewing
	if err := guarded(a, "2"); !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("lapsed holder's fenced write = %v, want condition failed", err)
	}
	b, err := lease.Acquire(ctx, tbl, name, "b", time.Minute, opts)
	if err != nil {
		t.Fatalf("take over a lapsed lease: %v", err)
	}
	if b.Epoch() <= a.Epoch() {
		t.Fatalf("epoch did not increase: a=%d b=%d", a.Epoch(), b.Epoch())
	}
	if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("old holder renewed after takeover: %v", err)
	}
	var tce *items.TxCanceledError
	if err := guarded(a, "3"); !errors.As(err, &tce) || tce.Index != 0 || !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("fenced-out write = %v, want TxCanceledError at 0", err)
	}
	for _, sk := range []string{"2", "3"} {
		if _, err := tbl.Get(ctx, items.Key{PK: name + "#data", SK: sk}); !errors.Is(err, tally.ErrNotFound) {
			t.Fatalf("fenced-out write %s landed: %v", sk, err)
		}
	}
	if err := guarded(b, "4"); err != nil {
		t.Fatalf("new holder's fenced write: %v", err)
	}
}

func BenchmarkBatchWrite(b *testing.B) {
	ctx := context.Background()
	tbl := openShared(b, itemsdynamodb.Options{}, nil)
	pk := "bench-write-" + randHex()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		puts := make([]items.Item, items.MaxBatchWrite)
		for j := range puts {
			puts[j] = items.Item{"PK": pk, "SK": fmt.Sprintf("%08d#%02d", i, j), "text": "WALMART", "n": j, "conf": 0.93}
		}
		if err := tbl.BatchWrite(ctx, puts, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*items.MaxBatchWrite)/b.Elapsed().Seconds(), "items/s")
}

func BenchmarkQuery(b *testing.B) {
	ctx := context.Background()
	tbl := openShared(b, itemsdynamodb.Options{}, nil)
	pk := "bench-query-" + randHex()
	var puts []items.Item
	for i := 0; i < 100; i++ {
		puts = append(puts, items.Item{"PK": pk, "SK": fmt.Sprintf("LINE#%05d", i), "text": "WALMART", "n": i})
	}
	if err := items.PutAll(ctx, tbl, puts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, err := items.QueryAll(ctx, tbl, items.Query{PK: pk, SK: items.SKCond{Op: items.SKBeginsWith, Value: "LINE#"}})
		if err != nil || len(got) != len(puts) {
			b.Fatalf("query: %d items, %v", len(got), err)
		}
	}
}
