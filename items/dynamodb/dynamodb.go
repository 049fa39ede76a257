// Package dynamodb is the AWS adapter of the items port: Tally's single
// table in Amazon DynamoDB, with the same behaviour as the embedded adapter
// (items/sqlite), checked by the same conformance suite (items/itemstest).
//
// Requests are validated before they are sent, with items/expr and the
// port's own limits, so both adapters reject the same inputs with
// tally.ErrInvalidArgument (the emulator, moto_server, accepts some inputs
// DynamoDB rejects). Conditions and updates are passed to DynamoDB as
// written; the adapter adds only its own placeholders, with names that
// cannot clash with the caller's.
//
// TTL. DynamoDB deletes expired items only eventually (often days later) and
// returns them until then. This adapter hides them at once, as the embedded
// adapter does: an item whose time_to_live (Unix seconds) is below the
// current second is filtered from Get, BatchGet and Query, and every
// condition is rewritten so that an expired item counts as absent. An
// Update that meets an expired item is redone as a conditional Put of the
// update applied to an empty item, so it behaves as an update of a missing
// item.
package dynamodb

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/awsenv"
	"github.com/tallyhq/tally/internal/ctxtime"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/items/expr"
)

// Options configure a Table.
type Options struct {
	// Table is the DynamoDB table name (required).
	Table string
	// Indexes are the table's global secondary indexes; nil means
	// items.DefaultIndexes. The adapter needs them to validate index key
	// attributes and page tokens before sending.
	Indexes []items.Index
	// Logger receives retry notices; nil discards them.
	Logger *slog.Logger
	// Now is the clock that decides which items have expired; nil means
	// time.Now.
	Now func() time.Time
}

// Table is one DynamoDB table. It implements items.Table and is safe for
// concurrent use.
type Table struct {
	client  *dynamodb.Client
	name    string
	indexes []items.Index
	log     *slog.Logger
	now     func() time.Time
}

var _ items.Table = (*Table)(nil)

// maxAttempts bounds the adapter's own retry loops that cannot rely on ctx
// alone: transactions redone after meeting an expired item or a conflict,
// updates redone over an expired item.
const maxAttempts = 10

// New returns the table called opts.Table, using cfg (from awsenv.Load,
// whose retryer retries throttling). It does not contact AWS: call Check at
// start-up for a clear error when the table is missing.
func New(cfg aws.Config, opts Options) (*Table, error) {
	if opts.Table == "" {
		return nil, fmt.Errorf("items/dynamodb: no table name: %w", tally.ErrInvalidArgument)
	}
	indexes := opts.Indexes
	if indexes == nil {
		indexes = items.DefaultIndexes
	}
	if err := checkIndexes(indexes); err != nil {
		return nil, fmt.Errorf("items/dynamodb: table %s: %w", opts.Table, err)
	}
	t := &Table{
		client:  dynamodb.NewFromConfig(cfg),
		name:    opts.Table,
		indexes: append([]items.Index(nil), indexes...),
		log:     opts.Logger,
		now:     opts.Now,
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	return t, nil
}

func checkIndexes(indexes []items.Index) error {
	seen := map[string]bool{}
	for _, ix := range indexes {
		if ix.Name == "" || ix.PK == "" || seen[ix.Name] {
			return fmt.Errorf("bad or duplicate index %+v: %w", ix, tally.ErrInvalidArgument)
		}
		seen[ix.Name] = true
	}
	return nil
}

// Name is the DynamoDB table name.
func (t *Table) Name() string { return t.name }

// Close releases nothing: the SDK client holds no resources that need it.
func (t *Table) Close() error { return nil }

// ---- errors ----

// wrap maps an AWS error onto the port's sentinels, naming the operation
// and the table.
func (t *Table) wrap(op string, err error) error {
	var ccf *types.ConditionalCheckFailedException
	var rnf *types.ResourceNotFoundException
	var api smithy.APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ccf):
		return fmt.Errorf("dynamodb %s: %s: %w", t.name, op, tally.ErrConditionFailed)
	case errors.As(err, &rnf):
		// Not tally.ErrNotFound: a missing table must not look like a
		// missing item. Check reports it as ErrNotFound at start-up.
		return fmt.Errorf("dynamodb %s: %s: table or index does not exist: %w", t.name, op, err)
	case errors.As(err, &api) && isInvalid(api.ErrorCode()):
		return fmt.Errorf("dynamodb %s: %s: %w: %v", t.name, op, tally.ErrInvalidArgument, api.ErrorMessage())
	}
	return fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
}

func isInvalid(code string) bool {
	switch code {
	case "ValidationException", "ItemCollectionSizeLimitExceededException", "SerializationException":
		return true
	}
	return false
}

func keyString(k items.Key) string { return k.PK + "/" + k.SK }

// ---- expressions ----

// ttlNames are the placeholders the adapter adds to a request's
// expressions, chosen not to clash with the caller's.
type ttlNames struct {
	attr, now, typeN string
}

func newTTLNames(names map[string]string, values map[string]any) ttlNames {
	return ttlNames{
		attr:  freshName("#tally_ttl", names),
		now:   freshName(":tally_now", values),
		typeN: freshName(":tally_N", values),
	}
}

// expired is true on an item whose time_to_live is a number below now. The
// type test keeps a non-numeric time_to_live (which DynamoDB's TTL ignores)
// out of the comparison.
func (n ttlNames) expired() string {
	return fmt.Sprintf("(attribute_type(%s, %s) AND %s < %s)", n.attr, n.typeN, n.attr, n.now)
}

// request holds one request's condition and placeholders.
type request struct {
	cond   *string
	names  map[string]string
	values map[string]types.AttributeValue
}

// newRequest encodes the caller's placeholders.
func newRequest(names map[string]string, values map[string]any) (request, error) {
	r := request{names: map[string]string{}, values: map[string]types.AttributeValue{}}
	for k, v := range names {
		r.names[k] = v
	}
	var err error
	if len(values) > 0 {
		if r.values, err = encodePlaceholders(values); err != nil {
			return request{}, err
		}
	}
	return r, nil
}

// addTTL adds the adapter's placeholders at now (Unix seconds).
func (r *request) addTTL(n ttlNames, now int64) {
	r.names[n.attr] = items.AttrTTL
	r.values[n.now] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now, 10)}
	r.values[n.typeN] = &types.AttributeValueMemberS{Value: "N"}
}

func (r request) namesOrNil() map[string]string {
	if len(r.names) == 0 {
		return nil
	}
	return r.names
}

func (r request) valuesOrNil() map[string]types.AttributeValue {
	if len(r.values) == 0 {
		return nil
	}
	return r.values
}

// writeRequest builds the condition of a Put, Delete or check so that an
// expired item counts as absent: a condition that holds on an absent item
// also holds on an expired one; any other must also find the item live.
func writeRequest(c items.Cond, parsed *expr.Condition, now int64) (request, error) {
	r, err := newRequest(c.Names, c.Values)
	if err != nil || parsed == nil {
		return r, err
	}
	n := newTTLNames(c.Names, c.Values)
	var e string
	if parsed.Eval(nil) {
		e = "(" + c.Expr + ") OR " + n.expired()
	} else {
		e = "(" + c.Expr + ") AND NOT " + n.expired()
	}
	r.cond = &e
	r.addTTL(n, now)
	return r, nil
}

// compiledUpdate is an update expression with its condition, parsed.
type compiledUpdate struct {
	expr    string
	cond    string
	names   map[string]string
	values  map[string]any
	update  *expr.UpdateExpr
	parsedC *expr.Condition
}

func (t *Table) compileUpdate(update, cond string, names map[string]string, values map[string]any) (compiledUpdate, error) {
	cu := compiledUpdate{expr: update, cond: cond, names: names, values: values}
	var err error
	if cu.update, cu.parsedC, err = expr.ParseUpdate(update, cond, names, values); err != nil {
		return compiledUpdate{}, err
	}
	targets := map[string]bool{}
	for _, a := range cu.update.Targets() {
		targets[a] = true
	}
	// DynamoDB rejects an update that gives an index key attribute a value
	// of the wrong type (moto does not). The value is known here when it
	// does not depend on the stored item: the update applied to an empty
	// item then says what it will be.
	if out, err := cu.update.Apply(nil); err == nil {
		for _, ix := range t.indexes {
			for _, a := range []string{ix.PK, ix.SK} {
				v, ok := out[a]
				if a == "" || !targets[a] || !ok {
					continue
				}
				if s, isStr := v.(string); !isStr || s == "" {
					return compiledUpdate{}, fmt.Errorf("%s (a key of index %s) must be a non-empty string: %w", a, ix.Name, tally.ErrInvalidArgument)
				}
			}
		}
	}
	return cu, nil
}

// liveRequest builds the placeholders and condition of an UpdateItem that
// applies only to a live or absent item; an expired one fails the
// condition and is dealt with by the caller.
func (cu compiledUpdate) liveRequest(now int64) (request, error) {
	r, err := newRequest(cu.names, cu.values)
	if err != nil {
		return r, err
	}
	n := newTTLNames(cu.names, cu.values)
	e := "NOT " + n.expired()
	if cu.parsedC != nil {
		e = "(" + cu.cond + ") AND " + e
	}
	r.cond = &e
	r.addTTL(n, now)
	return r, nil
}

// expiredRequest is the condition of a Put that replaces an expired item:
// it must still be expired.
func expiredRequest(now int64) request {
	r := request{names: map[string]string{}, values: map[string]types.AttributeValue{}}
	n := newTTLNames(nil, nil)
	e := n.expired()
	r.cond = &e
	r.addTTL(n, now)
	return r
}

// applyToMissing computes the item an update makes of a missing item.
func (t *Table) applyToMissing(key items.Key, cu compiledUpdate) (items.Item, error) {
	out, err := cu.update.Apply(nil)
	if err != nil {
		return nil, err
	}
	it := items.Item(out)
	it[items.AttrPK], it[items.AttrSK] = key.PK, key.SK
	if err := items.CheckItem(it, t.indexes); err != nil {
		return nil, err
	}
	return it, nil
}

// ---- single-item operations ----

// Get returns the item at key (a strongly consistent read);
// tally.ErrNotFound if there is none or it has expired.
func (t *Table) Get(ctx context.Context, key items.Key) (items.Item, error) {
	if err := items.CheckKey(key); err != nil {
		return nil, fmt.Errorf("dynamodb %s: get: %w", t.name, err)
	}
	it, err := t.getRaw(ctx, key)
	if err != nil {
		return nil, err
	}
	if it == nil || items.Expired(it, t.now()) {
		return nil, fmt.Errorf("dynamodb %s: get %s: %w", t.name, keyString(key), tally.ErrNotFound)
	}
	return items.OutputItem(it), nil
}

// getRaw reads the stored item, expired or not; nil when there is none.
func (t *Table) getRaw(ctx context.Context, key items.Key) (items.Item, error) {
	out, err := t.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &t.name,
		Key:            encodeKey(key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, t.wrap("get "+keyString(key), err)
	}
	if out.Item == nil {
		return nil, nil
	}
	it, err := decodeItem(out.Item)
	if err != nil {
		return nil, fmt.Errorf("dynamodb %s: get %s: %w", t.name, keyString(key), err)
	}
	return it, nil
}

// Put writes the whole item if cond holds on the stored item.
func (t *Table) Put(ctx context.Context, item items.Item, cond items.Cond) error {
	it, err := items.PrepareItem(item, t.indexes)
	if err != nil {
		return fmt.Errorf("dynamodb %s: put: %w", t.name, err)
	}
	key := it.Key()
	op := "put " + keyString(key)
	parsed, err := expr.ParseCond(cond)
	if err != nil {
		return fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
	}
	av, err := encodeItem(it)
	if err != nil {
		return fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
	}
	r, err := writeRequest(cond, parsed, t.now().Unix())
	if err != nil {
		return fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
	}
	_, err = t.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &t.name,
		Item:                      av,
		ConditionExpression:       r.cond,
		ExpressionAttributeNames:  r.namesOrNil(),
		ExpressionAttributeValues: r.valuesOrNil(),
	})
	return t.wrap(op, err)
}

// Delete removes the item if cond holds; deleting a missing item with no
// condition is not an error.
func (t *Table) Delete(ctx context.Context, key items.Key, cond items.Cond) error {
	if err := items.CheckKey(key); err != nil {
		return fmt.Errorf("dynamodb %s: delete: %w", t.name, err)
	}
	op := "delete " + keyString(key)
	parsed, err := expr.ParseCond(cond)
	if err != nil {
		return fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
	}
	r, err := writeRequest(cond, parsed, t.now().Unix())
	if err != nil {
		return fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
	}
	_, err = t.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &t.name,
		Key:                       encodeKey(key),
		ConditionExpression:       r.cond,
		ExpressionAttributeNames:  r.namesOrNil(),
		ExpressionAttributeValues: r.valuesOrNil(),
	})
	return t.wrap(op, err)
}

// Update applies u to the item (creating it when absent or expired) if
// u.Cond holds, and returns the item as it is afterwards.
//
// It is one UpdateItem conditioned on the item not having expired. When
// that fails on an expired item, the update is applied here to an empty
// item and written with a Put conditioned on the item still being expired;
// if someone wrote the item in between, the whole thing starts over.
func (t *Table) Update(ctx context.Context, key items.Key, u items.Update) (items.Item, error) {
	if err := items.CheckKey(key); err != nil {
		return nil, fmt.Errorf("dynamodb %s: update: %w", t.name, err)
	}
	op := "update " + keyString(key)
	cu, err := t.compileUpdate(u.Expr, u.Cond, u.Names, u.Values)
	if err != nil {
		return nil, fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		now := t.now().Unix()
		r, err := cu.liveRequest(now)
		if err != nil {
			return nil, fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
		}
		in := &dynamodb.UpdateItemInput{
			TableName:                           &t.name,
			Key:                                 encodeKey(key),
			ConditionExpression:                 r.cond,
			ExpressionAttributeNames:            r.namesOrNil(),
			ExpressionAttributeValues:           r.valuesOrNil(),
			ReturnValues:                        types.ReturnValueAllNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		if u.Expr != "" {
			in.UpdateExpression = &u.Expr
		}
		out, err := t.client.UpdateItem(ctx, in)
		if err == nil {
			it, err := decodeItem(out.Attributes)
			if err != nil {
				return nil, fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
			}
			return items.OutputItem(it), nil
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return nil, t.wrap(op, err)
		}
		old, err := t.oldItem(ctx, key, ccf.Item)
		if err != nil {
			return nil, err
		}
		if old == nil || !items.Expired(old, time.Unix(now, 0)) || !cu.parsedC.Eval(nil) {
			return nil, fmt.Errorf("dynamodb %s: %s: %w", t.name, op, tally.ErrConditionFailed)
		}
		// The item has expired: update it as if it were missing.
		it, err := t.applyToMissing(key, cu)
		if err != nil {
			return nil, fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
		}
		av, err := encodeItem(it)
		if err != nil {
			return nil, fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
		}
		pr := expiredRequest(now)
		_, err = t.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                 &t.name,
			Item:                      av,
			ConditionExpression:       pr.cond,
			ExpressionAttributeNames:  pr.names,
			ExpressionAttributeValues: pr.values,
		})
		if err == nil {
			return items.OutputItem(it), nil
		}
		if !errors.As(err, &ccf) {
			return nil, t.wrap(op+" (replacing an expired item)", err)
		}
		t.log.Debug("expired item changed during update; retrying", "table", t.name, "key", keyString(key))
	}
	return nil, fmt.Errorf("dynamodb %s: %s: the item kept changing over %d attempts: %w", t.name, op, maxAttempts, tally.ErrConditionFailed)
}

// oldItem is the item a failed condition saw: the one DynamoDB returned
// with the failure, or (from a backend that returns none) a fresh read.
func (t *Table) oldItem(ctx context.Context, key items.Key, returned map[string]types.AttributeValue) (items.Item, error) {
	if returned != nil {
		it, err := decodeItem(returned)
		if err != nil {
			return nil, fmt.Errorf("dynamodb %s: %s: %w", t.name, keyString(key), err)
		}
		return it, nil
	}
	return t.getRaw(ctx, key)
}

// ---- batches ----

// backoff sleeps before retry attempt n (1, 2, …) of unprocessed batch
// items: exponential from 25 ms up to awsenv.MaxBackoff, with jitter, so
// that clients throttled together do not retry together.
func backoff(ctx context.Context, n int) error {
	d := 25 * time.Millisecond << min(n-1, 10)
	d = min(d, awsenv.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	return ctxtime.Sleep(ctx, d)
}

// BatchWrite puts and deletes up to items.MaxBatchWrite items on distinct
// keys, retrying the items DynamoDB leaves unprocessed (with backoff) until
// every write is applied or ctx ends.
func (t *Table) BatchWrite(ctx context.Context, puts []items.Item, deletes []items.Key) error {
	n := len(puts) + len(deletes)
	if n > items.MaxBatchWrite {
		return fmt.Errorf("dynamodb %s: batch write of %d items, more than %d: %w", t.name, n, items.MaxBatchWrite, tally.ErrInvalidArgument)
	}
	if n == 0 {
		return nil
	}
	reqs := make([]types.WriteRequest, 0, n)
	seen := make(map[items.Key]bool, n)
	for i, p := range puts {
		it, err := items.PrepareItem(p, t.indexes)
		if err != nil {
			return fmt.Errorf("dynamodb %s: batch write: put %d: %w", t.name, i, err)
		}
		k := it.Key()
		if seen[k] {
			return fmt.Errorf("dynamodb %s: batch write: duplicate key %s: %w", t.name, keyString(k), tally.ErrInvalidArgument)
		}
		seen[k] = true
		av, err := encodeItem(it)
		if err != nil {
			return fmt.Errorf("dynamodb %s: batch write: put %d: %w", t.name, i, err)
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: av}})
	}
	for i, k := range deletes {
		if err := items.CheckKey(k); err != nil {
			return fmt.Errorf("dynamodb %s: batch write: delete %d: %w", t.name, i, err)
		}
		if seen[k] {
			return fmt.Errorf("dynamodb %s: batch write: duplicate key %s: %w", t.name, keyString(k), tally.ErrInvalidArgument)
		}
		seen[k] = true
		reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: encodeKey(k)}})
	}
	for attempt := 0; len(reqs) > 0; attempt++ {
		if attempt > 0 {
			t.log.Debug("retrying unprocessed batch writes", "table", t.name, "items", len(reqs), "attempt", attempt)
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("dynamodb %s: batch write: %d of %d items unprocessed: %w", t.name, len(reqs), n, err)
			}
		}
		out, err := t.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{t.name: reqs},
		})
		if err != nil {
			return t.wrap(fmt.Sprintf("batch write of %d items", len(reqs)), err)
		}
		reqs = out.UnprocessedItems[t.name]
	}
	return nil
}

// BatchGet returns the live items among up to items.MaxBatchGet distinct
// keys (strongly consistent reads), retrying the keys DynamoDB leaves
// unprocessed until all are read or ctx ends.
func (t *Table) BatchGet(ctx context.Context, keys []items.Key) ([]items.Item, error) {
	if len(keys) > items.MaxBatchGet {
		return nil, fmt.Errorf("dynamodb %s: batch get of %d keys, more than %d: %w", t.name, len(keys), items.MaxBatchGet, tally.ErrInvalidArgument)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	seen := make(map[items.Key]bool, len(keys))
	pending := make([]map[string]types.AttributeValue, 0, len(keys))
	for i, k := range keys {
		if err := items.CheckKey(k); err != nil {
			return nil, fmt.Errorf("dynamodb %s: batch get: key %d: %w", t.name, i, err)
		}
		if seen[k] {
			return nil, fmt.Errorf("dynamodb %s: batch get: duplicate key %s: %w", t.name, keyString(k), tally.ErrInvalidArgument)
		}
		seen[k] = true
		pending = append(pending, encodeKey(k))
	}
	var found []items.Item
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			t.log.Debug("retrying unprocessed batch gets", "table", t.name, "keys", len(pending), "attempt", attempt)
			if err := backoff(ctx, attempt); err != nil {
				return nil, fmt.Errorf("dynamodb %s: batch get: %d of %d keys unprocessed: %w", t.name, len(pending), len(keys), err)
			}
		}
		out, err := t.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{t.name: {Keys: pending, ConsistentRead: aws.Bool(true)}},
		})
		if err != nil {
			return nil, t.wrap(fmt.Sprintf("batch get of %d keys", len(pending)), err)
		}
		for _, av := range out.Responses[t.name] {
			it, err := decodeItem(av)
			if err != nil {
				return nil, fmt.Errorf("dynamodb %s: batch get: %w", t.name, err)
			}
			found = append(found, it)
		}
		pending = out.UnprocessedKeys[t.name].Keys
	}
	now := t.now()
	live := found[:0]
	for _, it := range found {
		if !items.Expired(it, now) {
			live = append(live, items.OutputItem(it))
		}
	}
	return live, nil
}

// ---- transactions ----

// txAction is one validated transactional write.
type txAction struct {
	w      items.Write
	key    items.Key
	item   map[string]types.AttributeValue // WritePut
	parsed *expr.Condition
	cu     compiledUpdate // WriteUpdate
	// replace, for an update that met an expired item, is the update
	// applied to an empty item, written instead as a Put conditioned on
	// the item still being expired.
	replace map[string]types.AttributeValue
}

// TransactWrite applies up to items.MaxTransact writes on distinct keys all
// together or not at all (TransactWriteItems). A failed condition is a
// *items.TxCanceledError naming the first failing write.
func (t *Table) TransactWrite(ctx context.Context, writes []items.Write) error {
	if len(writes) == 0 {
		return nil
	}
	if len(writes) > items.MaxTransact {
		return fmt.Errorf("dynamodb %s: transaction of %d writes, more than %d: %w", t.name, len(writes), items.MaxTransact, tally.ErrInvalidArgument)
	}
	acts := make([]txAction, len(writes))
	seen := make(map[items.Key]bool, len(writes))
	for i, w := range writes {
		a, err := t.prepareAction(w)
		if err != nil {
			return fmt.Errorf("dynamodb %s: transact write %d: %w", t.name, i, err)
		}
		if seen[a.key] {
			return fmt.Errorf("dynamodb %s: transact write %d: a second action on %s: %w", t.name, i, keyString(a.key), tally.ErrInvalidArgument)
		}
		seen[a.key] = true
		acts[i] = a
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("dynamodb %s: transact write: %w", t.name, err)
			}
		}
		now := t.now().Unix()
		tx := make([]types.TransactWriteItem, len(acts))
		for i := range acts {
			var err error
			if tx[i], err = t.txItem(&acts[i], now); err != nil {
				return fmt.Errorf("dynamodb %s: transact write %d: %w", t.name, i, err)
			}
		}
		_, err := t.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			TransactItems:      tx,
			ClientRequestToken: aws.String(requestToken()),
		})
		if err == nil {
			return nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return t.wrap(fmt.Sprintf("transact write of %d", len(acts)), err)
		}
		retry, err := t.canceled(ctx, acts, tce.CancellationReasons, now)
		if err != nil {
			return err
		}
		if !retry {
			return t.wrap(fmt.Sprintf("transact write of %d", len(acts)), tce)
		}
	}
	return fmt.Errorf("dynamodb %s: transact write: canceled %d times by conflicts or expiring items: %w", t.name, maxAttempts, tally.ErrConditionFailed)
}

// canceled reads a cancellation: it returns the error to report, or retry
// when the transaction should be sent again (after a conflict, or after
// turning updates of expired items into replacements).
func (t *Table) canceled(ctx context.Context, acts []txAction, reasons []types.CancellationReason, now int64) (retry bool, err error) {
	transient := false
	for i, r := range reasons {
		code := aws.ToString(r.Code)
		switch code {
		case "", "None":
			continue
		case "ConditionalCheckFailed":
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			transient = true
			continue
		case "ValidationError":
			return false, &items.TxCanceledError{Index: i, Err: fmt.Errorf("dynamodb %s: transact write %d: %w: %s", t.name, i, tally.ErrInvalidArgument, aws.ToString(r.Message))}
		default:
			return false, fmt.Errorf("dynamodb %s: transact write %d canceled: %s: %s", t.name, i, code, aws.ToString(r.Message))
		}
		if i >= len(acts) {
			break
		}
		a := &acts[i]
		failed := &items.TxCanceledError{Index: i, Err: fmt.Errorf("dynamodb %s: transact write %d on %s: %w", t.name, i, keyString(a.key), tally.ErrConditionFailed)}
		if a.replace != nil {
			// The expired item was written meanwhile: update it again.
			a.replace = nil
			return true, nil
		}
		if a.w.Kind != items.WriteUpdate || !a.parsed.Eval(nil) {
			return false, failed
		}
		old, err := t.oldItem(ctx, a.key, r.Item)
		if err != nil {
			return false, err
		}
		if old == nil || !items.Expired(old, time.Unix(now, 0)) {
			return false, failed
		}
		it, err := t.applyToMissing(a.key, a.cu)
		if err != nil {
			return false, &items.TxCanceledError{Index: i, Err: err}
		}
		if a.replace, err = encodeItem(it); err != nil {
			return false, fmt.Errorf("dynamodb %s: transact write %d: %w", t.name, i, err)
		}
		return true, nil
	}
	return transient, nil
}

func requestToken() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// prepareAction validates one write.
func (t *Table) prepareAction(w items.Write) (txAction, error) {
	a := txAction{w: w, key: w.Key}
	var err error
	switch w.Kind {
	case items.WritePut:
		var it items.Item
		if it, err = items.PrepareItem(w.Item, t.indexes); err != nil {
			return a, err
		}
		a.key = it.Key()
		if a.parsed, err = expr.ParseCond(w.Cond); err != nil {
			return a, err
		}
		a.item, err = encodeItem(it)
	case items.WriteDelete, items.WriteCheck:
		if err = items.CheckKey(w.Key); err != nil {
			return a, err
		}
		if a.parsed, err = expr.ParseCond(w.Cond); err != nil {
			return a, err
		}
		if w.Kind == items.WriteCheck && a.parsed == nil {
			err = fmt.Errorf("a check needs a condition: %w", tally.ErrInvalidArgument)
		}
	case items.WriteUpdate:
		if err = items.CheckKey(w.Key); err != nil {
			return a, err
		}
		a.cu, err = t.compileUpdate(w.Update, w.Cond.Expr, w.Cond.Names, w.Cond.Values)
		a.parsed = a.cu.parsedC
	default:
		err = fmt.Errorf("unknown write kind %d: %w", w.Kind, tally.ErrInvalidArgument)
	}
	return a, err
}

// txItem builds one TransactWriteItem at now.
func (t *Table) txItem(a *txAction, now int64) (types.TransactWriteItem, error) {
	if a.replace != nil {
		r := expiredRequest(now)
		return types.TransactWriteItem{Put: &types.Put{
			TableName: &t.name, Item: a.replace, ConditionExpression: r.cond,
			ExpressionAttributeNames: r.names, ExpressionAttributeValues: r.values,
		}}, nil
	}
	key := encodeKey(a.key)
	switch a.w.Kind {
	case items.WritePut, items.WriteDelete, items.WriteCheck:
		r, err := writeRequest(a.w.Cond, a.parsed, now)
		if err != nil {
			return types.TransactWriteItem{}, err
		}
		switch a.w.Kind {
		case items.WritePut:
			return types.TransactWriteItem{Put: &types.Put{
				TableName: &t.name, Item: a.item, ConditionExpression: r.cond,
				ExpressionAttributeNames: r.namesOrNil(), ExpressionAttributeValues: r.valuesOrNil(),
			}}, nil
		case items.WriteDelete:
			return types.TransactWriteItem{Delete: &types.Delete{
				TableName: &t.name, Key: key, ConditionExpression: r.cond,
				ExpressionAttributeNames: r.namesOrNil(), ExpressionAttributeValues: r.valuesOrNil(),
			}}, nil
		}
		return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: &t.name, Key: key, ConditionExpression: r.cond,
			ExpressionAttributeNames: r.namesOrNil(), ExpressionAttributeValues: r.valuesOrNil(),
		}}, nil
	}
	r, err := a.cu.liveRequest(now)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	up := &types.Update{
		TableName: &t.name, Key: key, UpdateExpression: &a.cu.expr, ConditionExpression: r.cond,
		ExpressionAttributeNames: r.namesOrNil(), ExpressionAttributeValues: r.valuesOrNil(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	return types.TransactWriteItem{Update: up}, nil
}

// ---- queries ----

// pageToken is the decoded form of Page.NextToken: DynamoDB's
// LastEvaluatedKey (all strings: the table key and the index key), with the
// query it belongs to.
type pageToken struct {
	V   int               `json:"v"`
	Idx string            `json:"i,omitempty"`
	PK  string            `json:"p"`
	Key map[string]string `json:"k"`
}

const tokenVersion = 1

func encodeToken(q items.Query, lek map[string]types.AttributeValue) (string, error) {
	tok := pageToken{V: tokenVersion, Idx: q.Index, PK: q.PK, Key: map[string]string{}}
	for k, av := range lek {
		s, ok := av.(*types.AttributeValueMemberS)
		if !ok {
			return "", fmt.Errorf("last evaluated key attribute %s is %T, not a string", k, av)
		}
		tok.Key[k] = s.Value
	}
	data, err := json.Marshal(tok)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(data), nil
}

// decodeToken checks a token against the query it continues: same index
// and partition, and exactly the key attributes that index's keys have.
func decodeToken(s string, q items.Query, ix items.Index) (map[string]types.AttributeValue, error) {
	bad := fmt.Errorf("malformed page token: %w", tally.ErrInvalidArgument)
	var tok pageToken
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(data, &tok) != nil || tok.V != tokenVersion {
		return nil, bad
	}
	if tok.Idx != q.Index || tok.PK != q.PK {
		return nil, fmt.Errorf("page token belongs to another query: %w", tally.ErrInvalidArgument)
	}
	want := map[string]bool{items.AttrPK: true, items.AttrSK: true, ix.PK: true}
	if ix.SK != "" {
		want[ix.SK] = true
	}
	if len(tok.Key) != len(want) || tok.Key[ix.PK] != q.PK {
		return nil, bad
	}
	out := make(map[string]types.AttributeValue, len(tok.Key))
	for k, v := range tok.Key {
		if !want[k] || v == "" {
			return nil, bad
		}
		out[k] = &types.AttributeValueMemberS{Value: v}
	}
	return out, nil
}

// keyCondition writes the KeyConditionExpression of q.
func keyCondition(q items.Query, ix items.Index) (string, map[string]string, map[string]types.AttributeValue) {
	names := map[string]string{"#pk": ix.PK}
	values := map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: q.PK}}
	e := "#pk = :pk"
	if q.SK.Op != items.SKAny {
		names["#sk"] = ix.SK
		values[":sk"] = &types.AttributeValueMemberS{Value: q.SK.Value}
		switch q.SK.Op {
		case items.SKBeginsWith:
			e += " AND begins_with(#sk, :sk)"
		case items.SKBetween:
			e += " AND #sk BETWEEN :sk AND :sk2"
			values[":sk2"] = &types.AttributeValueMemberS{Value: q.SK.Value2}
		default:
			e += " AND #sk " + string(q.SK.Op) + " :sk"
		}
	}
	return e, names, values
}

// Query returns one page of one partition of the table or an index, in
// sort-key order. Expired items are dropped from the page, so a page may
// hold fewer items than the limit (even none) and still have a NextToken.
// Table queries are strongly consistent; index queries are not (DynamoDB's
// global secondary indexes are eventually consistent).
func (t *Table) Query(ctx context.Context, q items.Query) (items.Page, error) {
	name := q.Index
	if name == "" {
		name = "table"
	}
	ix, err := items.IndexByName(t.indexes, q.Index)
	if err != nil {
		return items.Page{}, fmt.Errorf("dynamodb %s: query: %w", t.name, err)
	}
	if err := items.CheckQuery(q, ix); err != nil {
		return items.Page{}, fmt.Errorf("dynamodb %s: query %s: %w", t.name, name, err)
	}
	limit := q.Limit
	if limit == 0 || limit > items.MaxQueryLimit {
		limit = items.MaxQueryLimit
	}
	kce, names, values := keyCondition(q, ix)
	in := &dynamodb.QueryInput{
		TableName:                 &t.name,
		KeyConditionExpression:    &kce,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ScanIndexForward:          aws.Bool(!q.Reverse),
		Limit:                     aws.Int32(int32(limit)),
	}
	if q.Index != "" {
		in.IndexName = &q.Index
	} else {
		in.ConsistentRead = aws.Bool(true)
	}
	if q.Token != "" {
		if in.ExclusiveStartKey, err = decodeToken(q.Token, q, ix); err != nil {
			return items.Page{}, fmt.Errorf("dynamodb %s: query %s: %w", t.name, name, err)
		}
	}
	op := fmt.Sprintf("query %s %s", name, q.PK)
	out, err := t.client.Query(ctx, in)
	if err != nil {
		return items.Page{}, t.wrap(op, err)
	}
	now := t.now()
	page := items.Page{Items: make([]items.Item, 0, len(out.Items))}
	for _, av := range out.Items {
		it, err := decodeItem(av)
		if err != nil {
			return items.Page{}, fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
		}
		if !items.Expired(it, now) {
			page.Items = append(page.Items, items.OutputItem(it))
		}
	}
	if len(out.LastEvaluatedKey) > 0 {
		if page.NextToken, err = encodeToken(q, out.LastEvaluatedKey); err != nil {
			return items.Page{}, fmt.Errorf("dynamodb %s: %s: %w", t.name, op, err)
		}
	}
	return page, nil
}
