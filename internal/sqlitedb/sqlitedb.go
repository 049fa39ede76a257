// Package sqlitedb opens SQLite files the way every embedded adapter needs
// them: pure Go (static Lambda builds), WAL so readers never block the writer,
// a busy timeout so several OS processes can share one file, and write
// transactions that take the write lock up front (BEGIN IMMEDIATE) so two
// processes never deadlock upgrading a read lock.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// BusyTimeout is how long a statement waits for another connection (or
// process) to release the write lock before failing with SQLITE_BUSY.
const BusyTimeout = 30 * time.Second

// Open opens (creating if needed) the SQLite database at path and applies
// schema, a list of idempotent statements (CREATE … IF NOT EXISTS).
func Open(ctx context.Context, path string, schema ...string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("sqlite: create directory for %s: %w", path, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// A 64 MiB page cache and memory-mapped reads: the pure-Go driver pays
	// for every pread, and hot pages (queue heads, item partitions) are few.
	q.Add("_pragma", "cache_size(-65536)")
	q.Add("_pragma", "mmap_size(268435456)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One writer at a time inside a process; readers share the pool.
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(time.Minute)
	for _, stmt := range schema {
		if err := retryBusy(ctx, func() error {
			_, err := db.ExecContext(ctx, stmt)
			return err
		}); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: apply schema to %s: %w", path, err)
		}
	}
	return db, nil
}

// Tx runs fn inside a write transaction (BEGIN IMMEDIATE), committing when fn
// returns nil and rolling back otherwise. A transaction that could not take
// the lock because another process held it past the busy timeout is retried
// until ctx ends.
func Tx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	return retryBusy(ctx, func() error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// IsBusy reports whether err is SQLite's "database is locked/busy".
func IsBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return err != nil && strings.Contains(err.Error(), "database is locked")
}

func retryBusy(ctx context.Context, fn func() error) error {
	delay := 5 * time.Millisecond
	for {
		err := fn()
		if err == nil || !IsBusy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}
