// Package items is the port for a single-table item store with the semantics
// of Amazon DynamoDB: items addressed by a string partition key (PK) and sort
// key (SK), queries on one partition with sort-key conditions, global
// secondary indexes, conditional writes, batches, transactions and TTL.
//
// Conditions and updates are written in DynamoDB's own expression language
// (with #name and :value placeholders) so the AWS adapter passes them through
// unchanged and the embedded adapter (items/sqlite) evaluates them itself.
// Both pass the conformance suite in items/itemstest.
package items

import (
	"context"
	"errors"
	"fmt"

	"github.com/tallyhq/tally"
)

// Attribute names with a meaning to the store.
const (
	AttrPK   = "PK"
	AttrSK   = "SK"
	AttrType = "TYPE"
	// AttrTTL holds an expiry time in Unix seconds; an item whose TTL has
	// passed is invisible to every read and condition, and is removed.
	AttrTTL = "time_to_live"
)

// Limits shared by every adapter; they are DynamoDB's own.
const (
	MaxBatchWrite = 25
	MaxBatchGet   = 100
	MaxTransact   = 100
	MaxItemBytes  = 400 * 1024
	MaxQueryLimit = 1000 // a page never holds more, whatever Limit says
)

// Index is a global secondary index: items that carry its PK attribute (and
// its SK attribute, when it has one) are queryable by them.
type Index struct {
	Name string
	PK   string
	SK   string // empty for a partition-only index
}

// DefaultIndexes are the indexes of Tally's table, the same as the table the
// old system used: GSI1–GSI4 on GSInPK/GSInSK, and GSITYPE on TYPE.
var DefaultIndexes = []Index{
	{Name: "GSI1", PK: "GSI1PK", SK: "GSI1SK"},
	{Name: "GSI2", PK: "GSI2PK", SK: "GSI2SK"},
	{Name: "GSI3", PK: "GSI3PK", SK: "GSI3SK"},
	{Name: "GSI4", PK: "GSI4PK", SK: "GSI4SK"},
	{Name: "GSITYPE", PK: "TYPE"},
}

// Item is one item. Values are nil (NULL), bool, string, []byte (binary),
// numbers (any Go integer or float, json.Number or Number on input; int64
// when integral and in range, float64 otherwise, on output), []any (list) and
// map[string]any (map), nested freely; other slices and string-keyed maps are
// converted (see Normalize). PK and SK are required strings.
type Item map[string]any

// Key returns the item's primary key.
func (it Item) Key() Key {
	pk, _ := it[AttrPK].(string)
	sk, _ := it[AttrSK].(string)
	return Key{PK: pk, SK: sk}
}

// Key is an item's primary key.
type Key struct {
	PK string
	SK string
}

// Cond is a condition expression with its placeholders. The zero Cond means
// "no condition". Example:
//
//	Cond{Expr: "attribute_not_exists(PK) OR #exp < :now",
//	     Names: map[string]string{"#exp": "expires"},
//	     Values: map[string]any{":now": 1700000000}}
type Cond struct {
	Expr   string
	Names  map[string]string
	Values map[string]any
}

// Update is an update expression (SET, REMOVE, ADD, DELETE clauses, with
// if_not_exists and list_append in SET) and an optional condition; Names and
// Values serve both.
type Update struct {
	Expr   string
	Cond   string
	Names  map[string]string
	Values map[string]any
}

// Table is one single table.
type Table interface {
	// Get returns the item; tally.ErrNotFound if there is none.
	Get(ctx context.Context, key Key) (Item, error)
	// Put writes the whole item if cond holds on the stored item
	// (tally.ErrConditionFailed otherwise).
	Put(ctx context.Context, item Item, cond Cond) error
	// Delete removes the item if cond holds; deleting a missing item with
	// no condition is not an error.
	Delete(ctx context.Context, key Key, cond Cond) error
	// Update applies u to the item (creating it when absent, as DynamoDB)
	// if u.Cond holds, and returns the item as it is afterwards.
	Update(ctx context.Context, key Key, u Update) (Item, error)
	// BatchWrite puts and deletes up to MaxBatchWrite items in all, without
	// conditions, on distinct keys (a repeated key is
	// tally.ErrInvalidArgument). It returns once every write is applied. An
	// empty batch does nothing.
	BatchWrite(ctx context.Context, puts []Item, deletes []Key) error
	// BatchGet returns the items found among up to MaxBatchGet keys, in no
	// particular order; missing keys are simply absent. Keys must be
	// distinct.
	BatchGet(ctx context.Context, keys []Key) ([]Item, error)
	// Query returns one page of the items of one partition of the table or
	// of an index, in sort-key order.
	Query(ctx context.Context, q Query) (Page, error)
	// TransactWrite applies up to MaxTransact writes all together or not at
	// all, at most one per key. If a condition fails it returns a
	// *TxCanceledError. An empty list does nothing.
	TransactWrite(ctx context.Context, writes []Write) error
	// Close releases the table's resources.
	Close() error
}

// Query selects items of one partition.
type Query struct {
	// Index is "" for the table itself or the name of a declared index;
	// an unknown index is tally.ErrInvalidArgument.
	Index string
	// PK is the partition key value (of the index's PK attribute).
	PK string
	// SK narrows the sort key; the zero value matches every item.
	SK SKCond
	// Reverse returns items in descending sort-key order.
	Reverse bool
	// Limit caps the items in a page (0 or more than MaxQueryLimit means
	// MaxQueryLimit).
	Limit int
	// Token continues from a previous Page.NextToken. It is opaque.
	Token string
}

// SKOp is a sort-key comparison.
type SKOp string

// The sort-key comparisons DynamoDB allows in a key condition.
const (
	SKAny        SKOp = ""
	SKEqual      SKOp = "="
	SKLess       SKOp = "<"
	SKLessEq     SKOp = "<="
	SKGreater    SKOp = ">"
	SKGreaterEq  SKOp = ">="
	SKBeginsWith SKOp = "begins_with"
	SKBetween    SKOp = "between" // Value ≤ SK ≤ Value2
)

// SKCond is a condition on the sort key; strings compare by UTF-8 bytes.
type SKCond struct {
	Op     SKOp
	Value  string
	Value2 string
}

// Page is one page of query results.
type Page struct {
	Items []Item
	// NextToken is empty on the last page.
	NextToken string
}

// WriteKind says what a Write in a transaction does.
type WriteKind int

// The kinds of transactional write.
const (
	WritePut WriteKind = iota + 1
	WriteDelete
	WriteUpdate
	WriteCheck // only checks Cond; writes nothing
)

// Write is one action of TransactWrite. Build it with PutWrite, DeleteWrite,
// UpdateWrite or CheckWrite.
type Write struct {
	Kind   WriteKind
	Item   Item   // WritePut
	Key    Key    // the others
	Update string // WriteUpdate's expression
	Cond   Cond   // condition; its Names and Values also serve Update
}

// PutWrite puts item if cond holds.
func PutWrite(item Item, cond Cond) Write { return Write{Kind: WritePut, Item: item, Cond: cond} }

// DeleteWrite deletes key if cond holds.
func DeleteWrite(key Key, cond Cond) Write { return Write{Kind: WriteDelete, Key: key, Cond: cond} }

// UpdateWrite applies the update expression to key if cond holds.
func UpdateWrite(key Key, update string, cond Cond) Write {
	return Write{Kind: WriteUpdate, Key: key, Update: update, Cond: cond}
}

// CheckWrite fails the transaction unless cond holds on key.
func CheckWrite(key Key, cond Cond) Write { return Write{Kind: WriteCheck, Key: key, Cond: cond} }

// TxCanceledError reports which write of a transaction failed its condition.
// It matches tally.ErrConditionFailed with errors.Is.
type TxCanceledError struct {
	Index int // position of the failing write
	Err   error
}

func (e *TxCanceledError) Error() string {
	return fmt.Sprintf("transaction canceled: write %d: %v", e.Index, e.Err)
}

// Unwrap returns the failing write's error.
func (e *TxCanceledError) Unwrap() error { return e.Err }

// QueryAll follows NextToken until the last page and returns every item.
func QueryAll(ctx context.Context, t Table, q Query) ([]Item, error) {
	var all []Item
	for {
		page, err := t.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextToken == "" {
			return all, nil
		}
		q.Token = page.NextToken
	}
}

// BulkWriter is an optional Table method for backends where many puts in
// one request are cheaper than batches of MaxBatchWrite (one SQLite
// transaction instead of one per 25 items). Its puts are unconditional, as
// BatchWrite's are.
type BulkWriter interface {
	PutAll(ctx context.Context, puts []Item) error
}

// PutAll writes many items unconditionally: in one request when the table
// is a BulkWriter, else in BatchWrite chunks of MaxBatchWrite.
func PutAll(ctx context.Context, t Table, puts []Item) error {
	if bw, ok := t.(BulkWriter); ok {
		return bw.PutAll(ctx, puts)
	}
	for start := 0; start < len(puts); start += MaxBatchWrite {
		end := min(start+MaxBatchWrite, len(puts))
		if err := t.BatchWrite(ctx, puts[start:end], nil); err != nil {
			return fmt.Errorf("items %d–%d of %d: %w", start+1, end, len(puts), err)
		}
	}
	return nil
}

// IsConditionFailed reports whether err means a condition did not hold.
func IsConditionFailed(err error) bool { return errors.Is(err, tally.ErrConditionFailed) }
