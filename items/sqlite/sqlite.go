// Package sqlite is the embedded items adapter: a DynamoDB-shaped single
// table in one SQLite file, safe to share between goroutines and between OS
// processes on the same machine.
//
// Schema. Table items holds one row per item, keyed (pk, sk) WITHOUT ROWID
// so a partition's items are adjacent in sort-key (UTF-8 byte) order, with
// the whole item in DynamoDB's AttributeValue JSON (type-preserving, numbers
// as exact decimal text) and its TTL as an integer column. Table gsi holds
// one row per item per index the item belongs to, keyed (idx, ipk, isk, pk,
// sk): a query on the table or an index is one B-tree range scan, and a
// page is continued from the last row's key, so latency does not grow with
// the table or with the page number.
//
// Multi-process safety comes from SQLite: every write (conditional or not)
// reads the stored item, evaluates its condition and writes, inside one
// BEGIN IMMEDIATE transaction, which holds the file's write lock throughout.
//
// TTL: an item whose time_to_live is a number of Unix seconds in the past
// is invisible to reads and absent to conditions; writes that meet it
// replace or remove it, and Sweep deletes the rest.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/sqlitedb"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/items/expr"
)

var schema = []string{
	`CREATE TABLE IF NOT EXISTS items (
		pk      TEXT NOT NULL,
		sk      TEXT NOT NULL,
		item    TEXT NOT NULL, -- AttributeValue JSON of every attribute
		expires INTEGER,       -- time_to_live in Unix seconds; NULL: never
		PRIMARY KEY (pk, sk)
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS items_expires ON items(expires) WHERE expires IS NOT NULL`,
	// One row per (index, item) for items that carry the index's keys; isk
	// is '' for an index without a sort key.
	`CREATE TABLE IF NOT EXISTS gsi (
		idx TEXT NOT NULL,
		ipk TEXT NOT NULL,
		isk TEXT NOT NULL,
		pk  TEXT NOT NULL,
		sk  TEXT NOT NULL,
		PRIMARY KEY (idx, ipk, isk, pk, sk)
	) WITHOUT ROWID`,
	// The index definitions gsi was built for; Open rebuilds an index whose
	// definition changed.
	`CREATE TABLE IF NOT EXISTS gsi_defs (
		name TEXT PRIMARY KEY,
		pk   TEXT NOT NULL,
		sk   TEXT NOT NULL
	)`,
}

// maxPageBytes caps a query page the way DynamoDB does (1 MB).
const maxPageBytes = 1 << 20

// sweepBatch is how many expired items Sweep deletes per transaction, so it
// never holds the write lock for long.
const sweepBatch = 500

// Table is a single table in a SQLite file. It implements items.Table.
type Table struct {
	db      *sql.DB
	indexes []items.Index
	now     func() time.Time

	getStmt, putStmt, delStmt, gsiAddStmt, gsiDelStmt *sql.Stmt
}

var _ items.Table = (*Table)(nil)

// Open opens (creating if needed) the table in the SQLite file at path with
// the given global secondary indexes (usually items.DefaultIndexes). Every
// process sharing the file must declare the same indexes: Open builds the
// entries of an index it has not seen and drops those of one it no longer
// declares.
func Open(ctx context.Context, path string, indexes []items.Index) (*Table, error) {
	seen := map[string]bool{}
	for _, ix := range indexes {
		if ix.Name == "" || ix.PK == "" || seen[ix.Name] {
			return nil, fmt.Errorf("items/sqlite: open %s: bad or duplicate index %+v: %w", path, ix, tally.ErrInvalidArgument)
		}
		seen[ix.Name] = true
	}
	db, err := sqlitedb.Open(ctx, path, schema...)
	if err != nil {
		return nil, fmt.Errorf("items/sqlite: %w", err)
	}
	t := &Table{db: db, indexes: append([]items.Index(nil), indexes...), now: time.Now}
	for _, s := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&t.getStmt, `SELECT item, expires FROM items WHERE pk = ? AND sk = ?`},
		{&t.putStmt, `INSERT OR REPLACE INTO items (pk, sk, item, expires) VALUES (?, ?, ?, ?)`},
		{&t.delStmt, `DELETE FROM items WHERE pk = ? AND sk = ?`},
		{&t.gsiAddStmt, `INSERT OR IGNORE INTO gsi (idx, ipk, isk, pk, sk) VALUES (?, ?, ?, ?, ?)`},
		{&t.gsiDelStmt, `DELETE FROM gsi WHERE idx = ? AND ipk = ? AND isk = ? AND pk = ? AND sk = ?`},
	} {
		if *s.dst, err = db.PrepareContext(ctx, s.sql); err != nil {
			t.Close()
			return nil, fmt.Errorf("items/sqlite: prepare: %w", err)
		}
	}
	if err := t.syncIndexes(ctx); err != nil {
		t.Close()
		return nil, fmt.Errorf("items/sqlite: open %s: %w", path, err)
	}
	return t, nil
}

// syncIndexes makes the gsi table match the declared indexes.
func (t *Table) syncIndexes(ctx context.Context) error {
	return sqlitedb.Tx(ctx, t.db, func(tx *sql.Tx) error {
		have := map[string]items.Index{}
		rows, err := tx.QueryContext(ctx, `SELECT name, pk, sk FROM gsi_defs`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var ix items.Index
			if err := rows.Scan(&ix.Name, &ix.PK, &ix.SK); err != nil {
				rows.Close()
				return err
			}
			have[ix.Name] = ix
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var build []items.Index
		for _, ix := range t.indexes {
			if old, ok := have[ix.Name]; !ok || old != ix {
				build = append(build, ix)
			}
			delete(have, ix.Name)
		}
		for name := range have {
			if _, err := tx.ExecContext(ctx, `DELETE FROM gsi WHERE idx = ?`, name); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM gsi_defs WHERE name = ?`, name); err != nil {
				return err
			}
		}
		if len(build) == 0 {
			return nil
		}
		for _, ix := range build {
			if _, err := tx.ExecContext(ctx, `DELETE FROM gsi WHERE idx = ?`, ix.Name); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO gsi_defs (name, pk, sk) VALUES (?, ?, ?)`, ix.Name, ix.PK, ix.SK); err != nil {
				return err
			}
		}
		rows, err = tx.QueryContext(ctx, `SELECT item FROM items`)
		if err != nil {
			return err
		}
		defer rows.Close()
		add := tx.StmtContext(ctx, t.gsiAddStmt)
		for rows.Next() {
			var data []byte
			if err := rows.Scan(&data); err != nil {
				return err
			}
			it, err := decodeItem(data)
			if err != nil {
				return err
			}
			for _, e := range entries(build, it) {
				if _, err := add.ExecContext(ctx, e.idx, e.ipk, e.isk, e.pk, e.sk); err != nil {
					return err
				}
			}
		}
		return rows.Err()
	})
}

// Close releases the database.
func (t *Table) Close() error {
	for _, s := range []*sql.Stmt{t.getStmt, t.putStmt, t.delStmt, t.gsiAddStmt, t.gsiDelStmt} {
		if s != nil {
			s.Close()
		}
	}
	return t.db.Close()
}

// gsiEntry is one row of the gsi table.
type gsiEntry struct{ idx, ipk, isk, pk, sk string }

// entries lists the index rows an item belongs in: those of every index
// whose key attributes it carries as strings.
func entries(indexes []items.Index, it items.Item) []gsiEntry {
	if it == nil {
		return nil
	}
	k := it.Key()
	var out []gsiEntry
	for _, ix := range indexes {
		ipk, ok := it[ix.PK].(string)
		if !ok || ipk == "" {
			continue
		}
		isk := ""
		if ix.SK != "" {
			if isk, ok = it[ix.SK].(string); !ok || isk == "" {
				continue
			}
		}
		out = append(out, gsiEntry{ix.Name, ipk, isk, k.PK, k.SK})
	}
	return out
}

// stored is an item as the file holds it: raw includes an expired item
// (its rows must still be replaced or removed), live does not.
type stored struct {
	raw  items.Item
	live items.Item
}

func (t *Table) load(ctx context.Context, tx *sql.Tx, key items.Key, now int64) (stored, error) {
	var data []byte
	var expires sql.NullInt64
	err := tx.StmtContext(ctx, t.getStmt).QueryRowContext(ctx, key.PK, key.SK).Scan(&data, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return stored{}, nil
	}
	if err != nil {
		return stored{}, err
	}
	it, err := decodeItem(data)
	if err != nil {
		return stored{}, err
	}
	s := stored{raw: it, live: it}
	if expires.Valid && expires.Int64 < now {
		s.live = nil
	}
	return s, nil
}

// store replaces old (nil if none) by it, with their index rows.
func (t *Table) store(ctx context.Context, tx *sql.Tx, old, it items.Item) error {
	var expires any
	if secs, ok := items.TTLOf(it); ok {
		expires = secs
	}
	k := it.Key()
	if _, err := tx.StmtContext(ctx, t.putStmt).ExecContext(ctx, k.PK, k.SK, string(encodeItem(nil, it)), expires); err != nil {
		return err
	}
	return t.reindex(ctx, tx, old, it)
}

// remove deletes old and its index rows.
func (t *Table) remove(ctx context.Context, tx *sql.Tx, old items.Item) error {
	k := old.Key()
	if _, err := tx.StmtContext(ctx, t.delStmt).ExecContext(ctx, k.PK, k.SK); err != nil {
		return err
	}
	return t.reindex(ctx, tx, old, nil)
}

func (t *Table) reindex(ctx context.Context, tx *sql.Tx, old, it items.Item) error {
	before, after := entries(t.indexes, old), entries(t.indexes, it)
	keep := map[gsiEntry]bool{}
	for _, e := range after {
		keep[e] = true
	}
	had := map[gsiEntry]bool{}
	for _, e := range before {
		had[e] = true
		if keep[e] {
			continue
		}
		if _, err := tx.StmtContext(ctx, t.gsiDelStmt).ExecContext(ctx, e.idx, e.ipk, e.isk, e.pk, e.sk); err != nil {
			return err
		}
	}
	for _, e := range after {
		if had[e] {
			continue
		}
		if _, err := tx.StmtContext(ctx, t.gsiAddStmt).ExecContext(ctx, e.idx, e.ipk, e.isk, e.pk, e.sk); err != nil {
			return err
		}
	}
	return nil
}

func (t *Table) nowUnix() int64 { return t.now().Unix() }

// Get returns the item at key; tally.ErrNotFound if there is none or it has
// expired.
func (t *Table) Get(ctx context.Context, key items.Key) (items.Item, error) {
	if err := items.CheckKey(key); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	var data []byte
	var expires sql.NullInt64
	err := t.getStmt.QueryRowContext(ctx, key.PK, key.SK).Scan(&data, &expires)
	if errors.Is(err, sql.ErrNoRows) || err == nil && expires.Valid && expires.Int64 < t.nowUnix() {
		return nil, fmt.Errorf("get %s/%s: %w", key.PK, key.SK, tally.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", key.PK, key.SK, err)
	}
	it, err := decodeItem(data)
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", key.PK, key.SK, err)
	}
	return items.OutputItem(it), nil
}

func condFailed(op string, key items.Key) error {
	return fmt.Errorf("%s %s/%s: %w", op, key.PK, key.SK, tally.ErrConditionFailed)
}

// Put writes the whole item if cond holds on the stored item.
func (t *Table) Put(ctx context.Context, item items.Item, cond items.Cond) error {
	it, err := items.PrepareItem(item, t.indexes)
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	key := it.Key()
	c, err := expr.ParseCond(cond)
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", key.PK, key.SK, err)
	}
	return sqlitedb.Tx(ctx, t.db, func(tx *sql.Tx) error {
		old, err := t.load(ctx, tx, key, t.nowUnix())
		if err != nil {
			return fmt.Errorf("put %s/%s: %w", key.PK, key.SK, err)
		}
		if !c.Eval(old.live) {
			return condFailed("put", key)
		}
		if err := t.store(ctx, tx, old.raw, it); err != nil {
			return fmt.Errorf("put %s/%s: %w", key.PK, key.SK, err)
		}
		return nil
	})
}

// Delete removes the item if cond holds; deleting a missing item with no
// condition is not an error.
func (t *Table) Delete(ctx context.Context, key items.Key, cond items.Cond) error {
	if err := items.CheckKey(key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	c, err := expr.ParseCond(cond)
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", key.PK, key.SK, err)
	}
	return sqlitedb.Tx(ctx, t.db, func(tx *sql.Tx) error {
		old, err := t.load(ctx, tx, key, t.nowUnix())
		if err != nil {
			return fmt.Errorf("delete %s/%s: %w", key.PK, key.SK, err)
		}
		if !c.Eval(old.live) {
			return condFailed("delete", key)
		}
		if old.raw == nil {
			return nil
		}
		if err := t.remove(ctx, tx, old.raw); err != nil {
			return fmt.Errorf("delete %s/%s: %w", key.PK, key.SK, err)
		}
		return nil
	})
}

// compiledUpdate is an update expression with its condition, parsed.
type compiledUpdate struct {
	update *expr.UpdateExpr
	cond   *expr.Condition
}

func compileUpdate(update, cond string, names map[string]string, values map[string]any) (compiledUpdate, error) {
	u, c, err := expr.ParseUpdate(update, cond, names, values)
	if err != nil {
		return compiledUpdate{}, err
	}
	return compiledUpdate{update: u, cond: c}, nil
}

// apply computes the item after the update, checked for storage.
func (t *Table) apply(key items.Key, cu compiledUpdate, live items.Item) (items.Item, error) {
	out, err := cu.update.Apply(live)
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

// Update applies u to the item (creating it when absent) if u.Cond holds,
// and returns the item as it is afterwards.
func (t *Table) Update(ctx context.Context, key items.Key, u items.Update) (items.Item, error) {
	if err := items.CheckKey(key); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	cu, err := compileUpdate(u.Expr, u.Cond, u.Names, u.Values)
	if err != nil {
		return nil, fmt.Errorf("update %s/%s: %w", key.PK, key.SK, err)
	}
	var result items.Item
	err = sqlitedb.Tx(ctx, t.db, func(tx *sql.Tx) error {
		old, err := t.load(ctx, tx, key, t.nowUnix())
		if err != nil {
			return err
		}
		if !cu.cond.Eval(old.live) {
			return condFailed("update", key)
		}
		it, err := t.apply(key, cu, old.live)
		if err != nil {
			return err
		}
		if err := t.store(ctx, tx, old.raw, it); err != nil {
			return err
		}
		result = it
		return nil
	})
	if err != nil {
		if errors.Is(err, tally.ErrConditionFailed) {
			return nil, err
		}
		return nil, fmt.Errorf("update %s/%s: %w", key.PK, key.SK, err)
	}
	return items.OutputItem(result), nil
}

// BatchWrite puts and deletes up to items.MaxBatchWrite items in one
// transaction. An empty batch does nothing.
func (t *Table) BatchWrite(ctx context.Context, puts []items.Item, deletes []items.Key) error {
	n := len(puts) + len(deletes)
	if n > items.MaxBatchWrite {
		return fmt.Errorf("batch write of %d items, more than %d: %w", n, items.MaxBatchWrite, tally.ErrInvalidArgument)
	}
	return t.batchWrite(ctx, puts, deletes)
}

// PutAll writes any number of items in one transaction (items.BulkWriter):
// a receipt's thousand-odd entities cost one commit instead of forty.
func (t *Table) PutAll(ctx context.Context, puts []items.Item) error {
	return t.batchWrite(ctx, puts, nil)
}

func (t *Table) batchWrite(ctx context.Context, puts []items.Item, deletes []items.Key) error {
	n := len(puts) + len(deletes)
	if n == 0 {
		return nil
	}
	prepared := make([]items.Item, len(puts))
	seen := make(map[items.Key]bool, n)
	for i, p := range puts {
		it, err := items.PrepareItem(p, t.indexes)
		if err != nil {
			return fmt.Errorf("batch write: put %d: %w", i, err)
		}
		if seen[it.Key()] {
			return fmt.Errorf("batch write: duplicate key %s/%s: %w", it.Key().PK, it.Key().SK, tally.ErrInvalidArgument)
		}
		seen[it.Key()] = true
		prepared[i] = it
	}
	for i, k := range deletes {
		if err := items.CheckKey(k); err != nil {
			return fmt.Errorf("batch write: delete %d: %w", i, err)
		}
		if seen[k] {
			return fmt.Errorf("batch write: duplicate key %s/%s: %w", k.PK, k.SK, tally.ErrInvalidArgument)
		}
		seen[k] = true
	}
	if err := t.writeMany(ctx, prepared, deletes); err != nil {
		return fmt.Errorf("batch write: %w", err)
	}
	return nil
}

// writeMany applies prepared puts and deletes in one transaction.
func (t *Table) writeMany(ctx context.Context, puts []items.Item, deletes []items.Key) error {
	return sqlitedb.Tx(ctx, t.db, func(tx *sql.Tx) error {
		now := t.nowUnix()
		for _, it := range puts {
			old, err := t.load(ctx, tx, it.Key(), now)
			if err != nil {
				return err
			}
			if err := t.store(ctx, tx, old.raw, it); err != nil {
				return err
			}
		}
		for _, k := range deletes {
			old, err := t.load(ctx, tx, k, now)
			if err != nil {
				return err
			}
			if old.raw != nil {
				if err := t.remove(ctx, tx, old.raw); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// BatchGet returns the live items among up to items.MaxBatchGet distinct
// keys; missing keys are absent from the result.
func (t *Table) BatchGet(ctx context.Context, keys []items.Key) ([]items.Item, error) {
	if len(keys) > items.MaxBatchGet {
		return nil, fmt.Errorf("batch get of %d keys, more than %d: %w", len(keys), items.MaxBatchGet, tally.ErrInvalidArgument)
	}
	seen := make(map[items.Key]bool, len(keys))
	for i, k := range keys {
		if err := items.CheckKey(k); err != nil {
			return nil, fmt.Errorf("batch get: key %d: %w", i, err)
		}
		if seen[k] {
			return nil, fmt.Errorf("batch get: duplicate key %s/%s: %w", k.PK, k.SK, tally.ErrInvalidArgument)
		}
		seen[k] = true
	}
	now := t.nowUnix()
	var out []items.Item
	for _, k := range keys {
		var data []byte
		var expires sql.NullInt64
		err := t.getStmt.QueryRowContext(ctx, k.PK, k.SK).Scan(&data, &expires)
		if errors.Is(err, sql.ErrNoRows) || err == nil && expires.Valid && expires.Int64 < now {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("batch get %s/%s: %w", k.PK, k.SK, err)
		}
		it, err := decodeItem(data)
		if err != nil {
			return nil, fmt.Errorf("batch get %s/%s: %w", k.PK, k.SK, err)
		}
		out = append(out, items.OutputItem(it))
	}
	return out, nil
}

// txAction is one validated transactional write.
type txAction struct {
	w    items.Write
	key  items.Key
	item items.Item // WritePut
	cond *expr.Condition
	cu   compiledUpdate // WriteUpdate
}

// TransactWrite applies up to items.MaxTransact writes on distinct keys all
// together or not at all. An empty list does nothing.
func (t *Table) TransactWrite(ctx context.Context, writes []items.Write) error {
	if len(writes) == 0 {
		return nil
	}
	if len(writes) > items.MaxTransact {
		return fmt.Errorf("transaction of %d writes, more than %d: %w", len(writes), items.MaxTransact, tally.ErrInvalidArgument)
	}
	acts := make([]txAction, len(writes))
	seen := make(map[items.Key]bool, len(writes))
	for i, w := range writes {
		a := txAction{w: w, key: w.Key}
		var err error
		switch w.Kind {
		case items.WritePut:
			if a.item, err = items.PrepareItem(w.Item, t.indexes); err == nil {
				a.key = a.item.Key()
				a.cond, err = expr.ParseCond(w.Cond)
			}
		case items.WriteDelete, items.WriteCheck:
			if err = items.CheckKey(w.Key); err == nil {
				a.cond, err = expr.ParseCond(w.Cond)
			}
			if err == nil && w.Kind == items.WriteCheck && w.Cond.Expr == "" {
				err = fmt.Errorf("a check needs a condition: %w", tally.ErrInvalidArgument)
			}
		case items.WriteUpdate:
			if err = items.CheckKey(w.Key); err == nil {
				a.cu, err = compileUpdate(w.Update, w.Cond.Expr, w.Cond.Names, w.Cond.Values)
				a.cond = a.cu.cond
			}
		default:
			err = fmt.Errorf("unknown write kind %d: %w", w.Kind, tally.ErrInvalidArgument)
		}
		if err != nil {
			return fmt.Errorf("transact write %d: %w", i, err)
		}
		if seen[a.key] {
			return fmt.Errorf("transact write %d: a second action on %s/%s: %w", i, a.key.PK, a.key.SK, tally.ErrInvalidArgument)
		}
		seen[a.key] = true
		acts[i] = a
	}
	return sqlitedb.Tx(ctx, t.db, func(tx *sql.Tx) error {
		now := t.nowUnix()
		for i, a := range acts {
			old, err := t.load(ctx, tx, a.key, now)
			if err != nil {
				return fmt.Errorf("transact write %d: %w", i, err)
			}
			if !a.cond.Eval(old.live) {
				return &items.TxCanceledError{Index: i, Err: condFailed("transact write", a.key)}
			}
			switch a.w.Kind {
			case items.WritePut:
				err = t.store(ctx, tx, old.raw, a.item)
			case items.WriteDelete:
				if old.raw != nil {
					err = t.remove(ctx, tx, old.raw)
				}
			case items.WriteUpdate:
				var it items.Item
				if it, err = t.apply(a.key, a.cu, old.live); err != nil {
					return &items.TxCanceledError{Index: i, Err: err}
				}
				err = t.store(ctx, tx, old.raw, it)
			}
			if err != nil {
				return fmt.Errorf("transact write %d: %w", i, err)
			}
		}
		return nil
	})
}

// pageToken is the decoded form of Page.NextToken: where the page ended.
type pageToken struct {
	V   int    `json:"v"`
	Idx string `json:"i"`
	IPK string `json:"p"`
	ISK string `json:"s"`
	PK  string `json:"k"`
	SK  string `json:"r"`
}

const tokenVersion = 1

func encodeToken(tok pageToken) string {
	tok.V = tokenVersion
	data, _ := json.Marshal(tok)
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeToken(s string, q items.Query) (pageToken, error) {
	var tok pageToken
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(data, &tok)
	}
	if err != nil || tok.V != tokenVersion {
		return pageToken{}, fmt.Errorf("malformed page token: %w", tally.ErrInvalidArgument)
	}
	if tok.Idx != q.Index || tok.IPK != q.PK {
		return pageToken{}, fmt.Errorf("page token belongs to another query: %w", tally.ErrInvalidArgument)
	}
	return tok, nil
}

// bound is one end of a sort-key range.
type bound struct {
	val       string
	inclusive bool
	set       bool
}

// skRange turns a sort-key condition into lower and upper bounds.
func skRange(c items.SKCond) (lo, hi bound) {
	switch c.Op {
	case items.SKEqual:
		return bound{c.Value, true, true}, bound{c.Value, true, true}
	case items.SKLess:
		return bound{}, bound{c.Value, false, true}
	case items.SKLessEq:
		return bound{}, bound{c.Value, true, true}
	case items.SKGreater:
		return bound{c.Value, false, true}, bound{}
	case items.SKGreaterEq:
		return bound{c.Value, true, true}, bound{}
	case items.SKBeginsWith:
		// Valid UTF-8 never holds the byte 0xFF, so every string with the
		// prefix sorts below prefix+"\xff" and every other string above
		// the prefix sorts above it.
		return bound{c.Value, true, true}, bound{c.Value + "\xff", false, true}
	case items.SKBetween:
		return bound{c.Value, true, true}, bound{c.Value2, true, true}
	}
	return bound{}, bound{}
}

// Query returns one page of one partition of the table or an index, in
// sort-key order (for an index: index sort key, then table key).
func (t *Table) Query(ctx context.Context, q items.Query) (items.Page, error) {
	name := q.Index
	if name == "" {
		name = "table"
	}
	ix, err := items.IndexByName(t.indexes, q.Index)
	if err != nil {
		return items.Page{}, fmt.Errorf("query: %w", err)
	}
	if err := items.CheckQuery(q, ix); err != nil {
		return items.Page{}, fmt.Errorf("query %s: %w", name, err)
	}
	limit := q.Limit
	if limit == 0 || limit > items.MaxQueryLimit {
		limit = items.MaxQueryLimit
	}
	var tok *pageToken
	if q.Token != "" {
		tk, err := decodeToken(q.Token, q)
		if err != nil {
			return items.Page{}, fmt.Errorf("query %s: %w", name, err)
		}
		tok = &tk
	}
	sqlText, args := buildQuery(q, tok, limit+1)
	rows, err := t.db.QueryContext(ctx, sqlText, append(args, t.nowUnix())...)
	if err != nil {
		return items.Page{}, fmt.Errorf("query %s %s: %w", name, q.PK, err)
	}
	defer rows.Close()
	var page items.Page
	var last pageToken
	size, more := 0, false
	for rows.Next() {
		if len(page.Items) == limit || size >= maxPageBytes {
			more = true
			break
		}
		var data []byte
		if err := rows.Scan(&last.ISK, &last.PK, &last.SK, &data); err != nil {
			return items.Page{}, fmt.Errorf("query %s %s: %w", name, q.PK, err)
		}
		it, err := decodeItem(data)
		if err != nil {
			return items.Page{}, fmt.Errorf("query %s %s: %w", name, q.PK, err)
		}
		size += len(data)
		page.Items = append(page.Items, items.OutputItem(it))
	}
	if err := rows.Err(); err != nil {
		return items.Page{}, fmt.Errorf("query %s %s: %w", name, q.PK, err)
	}
	if more {
		last.Idx, last.IPK = q.Index, q.PK
		page.NextToken = encodeToken(last)
	}
	return page, nil
}

// buildQuery writes the page query. Each page is one index range scan:
// with a token, the range starts after the token's row (replacing the
// condition's bound on that side, which the token's row already satisfied).
// The last argument (now, for TTL) is appended by the caller.
func buildQuery(q items.Query, tok *pageToken, limit int) (string, []any) {
	lo, hi := skRange(q.SK)
	cmp := func(col string, b bound, lower bool) string {
		op := "<"
		if lower {
			op = ">"
		}
		if b.inclusive {
			op += "="
		}
		return " AND " + col + " " + op + " ?"
	}
	dir := "ASC"
	if q.Reverse {
		dir = "DESC"
	}
	var s string
	var args []any
	if q.Index == "" {
		s = `SELECT '', pk, sk, item FROM items WHERE pk = ?`
		args = append(args, q.PK)
		if tok != nil {
			b := bound{val: tok.SK, set: true}
			if q.Reverse {
				hi = b
			} else {
				lo = b
			}
		}
		if lo.set {
			s += cmp("sk", lo, true)
			args = append(args, lo.val)
		}
		if hi.set {
			s += cmp("sk", hi, false)
			args = append(args, hi.val)
		}
		s += ` AND (expires IS NULL OR expires >= ?) ORDER BY sk ` + dir
	} else {
		s = `SELECT g.isk, g.pk, g.sk, i.item FROM gsi g JOIN items i ON i.pk = g.pk AND i.sk = g.sk WHERE g.idx = ? AND g.ipk = ?`
		args = append(args, q.Index, q.PK)
		if tok != nil {
			if q.Reverse {
				hi = bound{}
				s += ` AND (g.isk, g.pk, g.sk) < (?, ?, ?)`
			} else {
				lo = bound{}
				s += ` AND (g.isk, g.pk, g.sk) > (?, ?, ?)`
			}
			args = append(args, tok.ISK, tok.PK, tok.SK)
		}
		if lo.set {
			s += cmp("g.isk", lo, true)
			args = append(args, lo.val)
		}
		if hi.set {
			s += cmp("g.isk", hi, false)
			args = append(args, hi.val)
		}
		s += ` AND (i.expires IS NULL OR i.expires >= ?) ORDER BY g.isk ` + dir + `, g.pk ` + dir + `, g.sk ` + dir
	}
	return s + fmt.Sprintf(" LIMIT %d", limit), args
}

// Sweep deletes every expired item, a batch per transaction, and returns
// how many it deleted. Reads already hide expired items; Sweep reclaims
// their space. Call it periodically (every few minutes is plenty).
func (t *Table) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n := 0
		err := sqlitedb.Tx(ctx, t.db, func(tx *sql.Tx) error {
			n = 0
			rows, err := tx.QueryContext(ctx, `SELECT item FROM items WHERE expires < ? LIMIT ?`, t.nowUnix(), sweepBatch)
			if err != nil {
				return err
			}
			var expired []items.Item
			for rows.Next() {
				var data []byte
				if err := rows.Scan(&data); err != nil {
					rows.Close()
					return err
				}
				it, err := decodeItem(data)
				if err != nil {
					rows.Close()
					return err
				}
				expired = append(expired, it)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, it := range expired {
				if err := t.remove(ctx, tx, it); err != nil {
					return err
				}
			}
			n = len(expired)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("items/sqlite: sweep: %w", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}
