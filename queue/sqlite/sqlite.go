// Package sqlite is the embedded queue adapter: many SQS-style queues in one
// SQLite file, safe to share between goroutines and between OS processes on
// the same machine.
//
// Multi-process safety comes from SQLite, not from this process: every
// operation that changes a message runs in one BEGIN IMMEDIATE transaction,
// which takes the file's write lock before reading. A receive therefore
// selects visible messages, pushes their visible_at past the visibility
// timeout, bumps their receive count and stamps a fresh receipt token as one
// atomic step, and no other process can claim the same message until the
// timeout passes.
//
// Receipt handles are "<message id>.<token>", where the token is random and
// replaced on every receive; a handle whose token is no longer the message's
// current one is stale and is rejected with tally.ErrInvalidArgument.
//
// Differences from SQS, all in the direction of stronger guarantees: receive
// order is oldest-visible first; counts in Stats are exact; stale receipt
// handles are detected; Retention may be as short as one second.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/sqlitedb"
	"github.com/tallyhq/tally/queue"
)

// MinRetention is the shortest retention period this adapter accepts. SQS
// requires a minute (queue.MinRetention); shorter periods exist here so that
// tests of expiry need not wait that long.
const MinRetention = time.Second

// Long-polling backoff: a waiting receive re-checks the file at these
// intervals, to see messages sent by other processes; sends in this process
// wake it at once.
const (
	pollMin = 20 * time.Millisecond
	pollMax = 50 * time.Millisecond
)

// schema holds every queue's messages in one table; visible_at is the single
// time that decides deliverability (end of the delay for a new message, end
// of the visibility timeout for a received one).
var schema = []string{
	`CREATE TABLE IF NOT EXISTS queues (
		id                INTEGER PRIMARY KEY,
		name              TEXT    NOT NULL UNIQUE,
		visibility_ns     INTEGER NOT NULL,
		retention_ns      INTEGER NOT NULL,
		delay_ns          INTEGER NOT NULL,
		dead_letter_id    INTEGER REFERENCES queues(id),
		max_receive_count INTEGER NOT NULL DEFAULT 0,
		created_at        INTEGER NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS messages (
		seq               INTEGER PRIMARY KEY,
		queue_id          INTEGER NOT NULL REFERENCES queues(id),
		id                TEXT    NOT NULL UNIQUE,
		body              TEXT    NOT NULL,
		attributes        TEXT,
		sent_at           INTEGER NOT NULL,
		visible_at        INTEGER NOT NULL,
		expires_at        INTEGER NOT NULL,
		receive_count     INTEGER NOT NULL DEFAULT 0,
		first_received_at INTEGER,
		token             TEXT,
		received_at       INTEGER
	)`,
	// The receive query: visible messages of one queue, oldest first.
	`CREATE INDEX IF NOT EXISTS messages_visible ON messages(queue_id, visible_at)`,
	// Retention sweeps.
	`CREATE INDEX IF NOT EXISTS messages_expiry ON messages(queue_id, expires_at)`,
}

// Broker is a set of queues in one SQLite file.
type Broker struct {
	db   *sql.DB
	path string

	mu      sync.Mutex
	waiters map[int64]chan struct{} // closed when the queue gets a message
	closed  chan struct{}
	once    sync.Once
}

var _ queue.Broker = (*Broker)(nil)

// Open opens (creating if needed) the queue file at path.
func Open(ctx context.Context, path string) (*Broker, error) {
	db, err := sqlitedb.Open(ctx, path, schema...)
	if err != nil {
		return nil, fmt.Errorf("open queue file: %w", err)
	}
	if err := addReceivedAt(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open queue file: %w", err)
	}
	return &Broker{db: db, path: path, waiters: map[int64]chan struct{}{}, closed: make(chan struct{})}, nil
}

// Close closes the file. Receives waiting in this process return an error.
func (b *Broker) Close() error {
	var err error
	b.once.Do(func() {
		close(b.closed)
		err = b.db.Close()
	})
	return err
}

// config is a queue's stored configuration with defaults applied.
type config struct {
	visibility, retention, delay time.Duration
	deadLetterID                 sql.NullInt64
	maxReceiveCount              int
}

// CreateQueue creates the named queue or opens it if it exists. On an
// existing queue it applies cfg, as SQS's CreateQueue followed by
// SetQueueAttributes would, so that a changed setting takes effect when the
// program restarts; messages already queued keep their expiry.
func (b *Broker) CreateQueue(ctx context.Context, name string, cfg queue.Config) (queue.Queue, error) {
	if err := queue.ValidateName(name); err != nil {
		return nil, fmt.Errorf("create queue: %w", err)
	}
	if err := queue.ValidateConfig(cfg); err != nil {
		return nil, fmt.Errorf("create queue %s: %w", name, err)
	}
	if cfg.Retention != 0 && cfg.Retention < MinRetention {
		return nil, fmt.Errorf("create queue %s: retention %v is under %v: %w", name, cfg.Retention, MinRetention, tally.ErrInvalidArgument)
	}
	if cfg.DeadLetter == name {
		return nil, fmt.Errorf("create queue %s: a queue cannot be its own dead-letter queue: %w", name, tally.ErrInvalidArgument)
	}
	c := config{
		visibility:      orDefault(cfg.VisibilityTimeout, queue.DefaultVisibility),
		retention:       orDefault(cfg.Retention, queue.DefaultRetention),
		delay:           cfg.Delay,
		maxReceiveCount: cfg.MaxReceiveCount,
	}
	var id int64
	err := sqlitedb.Tx(ctx, b.db, func(tx *sql.Tx) error {
		if cfg.DeadLetter != "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM queues WHERE name = ?`, cfg.DeadLetter).Scan(&c.deadLetterID)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("dead-letter queue %s: %w", cfg.DeadLetter, tally.ErrNotFound)
			}
			if err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `
			INSERT INTO queues (name, visibility_ns, retention_ns, delay_ns, dead_letter_id, max_receive_count, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET
				visibility_ns = excluded.visibility_ns,
				retention_ns = excluded.retention_ns,
				delay_ns = excluded.delay_ns,
				dead_letter_id = excluded.dead_letter_id,
				max_receive_count = excluded.max_receive_count
			RETURNING id`,
			name, int64(c.visibility), int64(c.retention), int64(c.delay), c.deadLetterID, c.maxReceiveCount, time.Now().UnixNano(),
		).Scan(&id)
	})
	if err != nil {
		return nil, fmt.Errorf("create queue %s: %w", name, err)
	}
	return &Queue{b: b, name: name, id: id}, nil
}

// OpenQueue opens an existing queue; tally.ErrNotFound if there is none.
func (b *Broker) OpenQueue(ctx context.Context, name string) (queue.Queue, error) {
	if err := queue.ValidateName(name); err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	var id int64
	err := b.db.QueryRowContext(ctx, `SELECT id FROM queues WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("open queue %s: %w", name, tally.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open queue %s: %w", name, err)
	}
	return &Queue{b: b, name: name, id: id}, nil
}

// waiter returns a channel closed at the next send to queue id in this
// process.
func (b *Broker) waiter(id int64) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.waiters[id]
	if !ok {
		ch = make(chan struct{})
		b.waiters[id] = ch
	}
	return ch
}

// notify wakes this process's receives waiting on queue id.
func (b *Broker) notify(id int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch, ok := b.waiters[id]; ok {
		close(ch)
		delete(b.waiters, id)
	}
}

// Queue is one queue in the file. Its configuration is read from the file
// on every operation, so a change made by another process applies at once.
type Queue struct {
	b    *Broker
	name string
	id   int64
}

var _ queue.Queue = (*Queue)(nil)

// Name is the queue's name.
func (q *Queue) Name() string { return q.name }

// queryer is a *sql.Tx or the *sql.DB itself.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (q *Queue) config(ctx context.Context, tx queryer) (config, error) {
	var c config
	var vis, ret, delay int64
	err := tx.QueryRowContext(ctx, `
		SELECT visibility_ns, retention_ns, delay_ns, dead_letter_id, max_receive_count
		FROM queues WHERE id = ?`, q.id).Scan(&vis, &ret, &delay, &c.deadLetterID, &c.maxReceiveCount)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("queue %s: %w", q.name, tally.ErrNotFound)
	}
	c.visibility, c.retention, c.delay = time.Duration(vis), time.Duration(ret), time.Duration(delay)
	return c, err
}

// SendBatch sends up to queue.MaxBatch entries in one transaction.
func (q *Queue) SendBatch(ctx context.Context, entries []queue.SendEntry) ([]queue.SendResult, error) {
	entries, err := queue.ValidateSendBatch(entries)
	if err != nil {
		return nil, fmt.Errorf("send to %s: %w", q.name, err)
	}
	results := make([]queue.SendResult, len(entries))
	err = sqlitedb.Tx(ctx, q.b.db, func(tx *sql.Tx) error {
		c, err := q.config(ctx, tx)
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		if err := q.sweep(ctx, tx, now); err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, `
			INSERT INTO messages (queue_id, id, body, attributes, sent_at, visible_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i, e := range entries {
			results[i] = queue.SendResult{ID: e.ID}
			if err := queue.ValidateEntry(e); err != nil {
				results[i].Err = fmt.Errorf("send entry %s to %s: %w", e.ID, q.name, err)
				continue
			}
			delay := c.delay
			if e.Delay != nil {
				delay = *e.Delay
			}
			var attrs sql.NullString
			if len(e.Attributes) > 0 {
				js, err := json.Marshal(e.Attributes)
				if err != nil {
					return err
				}
				attrs = sql.NullString{String: string(js), Valid: true}
			}
			id := newMessageID()
			if _, err := ins.ExecContext(ctx, q.id, id, e.Body, attrs, now, now+int64(delay), now+int64(c.retention)); err != nil {
				return err
			}
			results[i].MessageID = id
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("send to %s: %w", q.name, err)
	}
	q.b.notify(q.id)
	return results, nil
}

// sweep deletes the queue's expired messages.
func (q *Queue) sweep(ctx context.Context, tx *sql.Tx, now int64) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE queue_id = ? AND expires_at <= ?`, q.id, now)
	return err
}

// Receive claims up to opts.Max visible messages, long polling up to
// opts.Wait: it re-checks the file every 20–50 ms (other processes) and
// wakes at once on a send from this process.
func (q *Queue) Receive(ctx context.Context, opts queue.ReceiveOptions) ([]queue.Message, error) {
	opts, err := queue.ValidateReceive(opts)
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", q.name, err)
	}
	deadline := time.Now().Add(opts.Wait)
	poll := pollMin
	for {
		// Subscribe before looking, so a send between the look and the
		// wait is not missed.
		wake := q.b.waiter(q.id)
		msgs, err := q.claim(ctx, opts)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				// A cancel mid-transaction makes database/sql roll it
				// back, and the next statement fails with ErrTxDone:
				// the cause is the cancel.
				err = ctxErr
			}
			return nil, fmt.Errorf("receive from %s: %w", q.name, err)
		}
		if len(msgs) > 0 {
			return msgs, nil
		}
		// Poll cheaply (a read, no write lock) until something may be
		// there, then claim again.
		for {
			left := time.Until(deadline)
			if left <= 0 {
				return []queue.Message{}, nil
			}
			timer := time.NewTimer(min(poll, left))
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, fmt.Errorf("receive from %s: %w", q.name, ctx.Err())
			case <-q.b.closed:
				timer.Stop()
				return nil, fmt.Errorf("receive from %s: broker closed: %w", q.name, sql.ErrConnDone)
			case <-wake:
				timer.Stop()
			case <-timer.C:
			}
			poll = min(poll*2, pollMax)
			ready, err := q.anyVisible(ctx)
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					err = ctxErr
				}
				return nil, fmt.Errorf("receive from %s: %w", q.name, err)
			}
			if ready {
				break
			}
			wake = q.b.waiter(q.id)
		}
	}
}

// anyVisible reports whether a claim could find a message now.
func (q *Queue) anyVisible(ctx context.Context) (bool, error) {
	now := time.Now().UnixNano()
	var ok bool
	err := q.b.db.QueryRowContext(ctx, `
		SELECT EXISTS (SELECT 1 FROM messages WHERE queue_id = ? AND visible_at <= ? AND expires_at > ?)`,
		q.id, now, now).Scan(&ok)
	return ok, err
}

// claim is one receive attempt: in one write transaction it sweeps expired
// messages, redrives those whose next receive would exceed the queue's
// maxReceiveCount, and claims up to opts.Max of the rest.
func (q *Queue) claim(ctx context.Context, opts queue.ReceiveOptions) ([]queue.Message, error) {
	var msgs []queue.Message
	var redriven int64 = -1
	err := sqlitedb.Tx(ctx, q.b.db, func(tx *sql.Tx) error {
		msgs = msgs[:0]
		redriven = -1
		c, err := q.config(ctx, tx)
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		if err := q.sweep(ctx, tx, now); err != nil {
			return err
		}
		visibility := c.visibility
		if opts.Visibility > 0 {
			visibility = opts.Visibility
		}
		var dlqRetention int64
		if c.deadLetterID.Valid {
			if err := tx.QueryRowContext(ctx, `SELECT retention_ns FROM queues WHERE id = ?`, c.deadLetterID.Int64).Scan(&dlqRetention); err != nil {
				return fmt.Errorf("dead-letter queue: %w", err)
			}
		}
		upd, err := tx.PrepareContext(ctx, `
			UPDATE messages SET visible_at = ?, receive_count = receive_count + 1,
				first_received_at = coalesce(first_received_at, ?), token = ?, received_at = ?
			WHERE seq = ?`)
		if err != nil {
			return err
		}
		defer upd.Close()
		// Redriven rows leave the queue, so a few rounds fill the batch.
		for round := 0; len(msgs) < opts.Max && round < 10; round++ {
			rows, err := tx.QueryContext(ctx, `
				SELECT seq, id, body, attributes, sent_at, receive_count, first_received_at
				FROM messages WHERE queue_id = ? AND visible_at <= ?
				ORDER BY visible_at LIMIT ?`, q.id, now, opts.Max-len(msgs))
			if err != nil {
				return err
			}
			type row struct {
				seq, sentAt int64
				count       int
				first       sql.NullInt64
				m           queue.Message
				attrs       sql.NullString
			}
			var batch []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.seq, &r.m.ID, &r.m.Body, &r.attrs, &r.sentAt, &r.count, &r.first); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(batch) == 0 {
				break
			}
			for _, r := range batch {
				if c.deadLetterID.Valid && r.count >= c.maxReceiveCount {
					// Keep id, body, attributes and the original sent time,
					// as SQS does; the retention clock keeps running from
					// the original send.
					if _, err := tx.ExecContext(ctx, `
						UPDATE messages SET queue_id = ?, visible_at = ?, receive_count = 0,
							first_received_at = NULL, token = NULL, received_at = NULL, expires_at = sent_at + ?
						WHERE seq = ?`, c.deadLetterID.Int64, now, dlqRetention, r.seq); err != nil {
						return fmt.Errorf("redrive message %s: %w", r.m.ID, err)
					}
					redriven = c.deadLetterID.Int64
					continue
				}
				token := newToken()
				if _, err := upd.ExecContext(ctx, now+int64(visibility), now, token, now, r.seq); err != nil {
					return err
				}
				m := r.m
				m.ReceiptHandle = m.ID + "." + token
				m.ReceiveCount = r.count + 1
				m.SentAt = time.Unix(0, r.sentAt)
				m.FirstReceivedAt = time.Unix(0, now)
				if r.first.Valid {
					m.FirstReceivedAt = time.Unix(0, r.first.Int64)
				}
				if r.attrs.Valid {
					if err := json.Unmarshal([]byte(r.attrs.String), &m.Attributes); err != nil {
						return fmt.Errorf("message %s attributes: %w", m.ID, err)
					}
				}
				msgs = append(msgs, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if redriven >= 0 {
		q.b.notify(redriven)
	}
	return msgs, nil
}

// DeleteBatch deletes messages by receipt handle in one transaction.
// Deleting a message that is already gone succeeds, as on SQS; a malformed
// handle, or one from an earlier receive of a message received again since,
// fails its entry with tally.ErrInvalidArgument.
func (q *Queue) DeleteBatch(ctx context.Context, handles []string) ([]error, error) {
	if err := queue.ValidateBatchSize(len(handles)); err != nil {
		return nil, fmt.Errorf("delete from %s: %w", q.name, err)
	}
	errs := make([]error, len(handles))
	err := sqlitedb.Tx(ctx, q.b.db, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `DELETE FROM messages WHERE id = ? AND queue_id = ? AND token = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, h := range handles {
			errs[i] = nil
			id, token, err := parseHandle(h)
			if err != nil {
				errs[i] = fmt.Errorf("delete from %s: %w", q.name, err)
				continue
			}
			res, err := stmt.ExecContext(ctx, id, q.id, token)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				continue
			}
			switch err := q.explainMiss(ctx, tx, id); {
			case errors.Is(err, tally.ErrNotFound):
				// Already deleted: deleting again succeeds, as on SQS.
			case errors.Is(err, tally.ErrInvalidArgument):
				errs[i] = fmt.Errorf("delete from %s: %w", q.name, err)
			default:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete from %s: %w", q.name, err)
	}
	return errs, nil
}

// ChangeVisibilityBatch sets, from now, how long each message stays hidden.
func (q *Queue) ChangeVisibilityBatch(ctx context.Context, changes []queue.VisibilityChange) ([]error, error) {
	if err := queue.ValidateBatchSize(len(changes)); err != nil {
		return nil, fmt.Errorf("change visibility in %s: %w", q.name, err)
	}
	errs := make([]error, len(changes))
	released := false
	err := sqlitedb.Tx(ctx, q.b.db, func(tx *sql.Tx) error {
		released = false
		stmt, err := tx.PrepareContext(ctx, `UPDATE messages SET visible_at = ? WHERE id = ? AND queue_id = ? AND token = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		now := time.Now().UnixNano()
		for i, ch := range changes {
			errs[i] = nil
			if err := queue.ValidateVisibility(ch.Timeout); err != nil {
				errs[i] = fmt.Errorf("change visibility in %s: %w", q.name, err)
				continue
			}
			id, token, err := parseHandle(ch.ReceiptHandle)
			if err != nil {
				errs[i] = fmt.Errorf("change visibility in %s: %w", q.name, err)
				continue
			}
			res, err := stmt.ExecContext(ctx, now+int64(ch.Timeout), id, q.id, token)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				released = released || ch.Timeout == 0
				continue
			}
			switch err := q.explainMiss(ctx, tx, id); {
			case errors.Is(err, tally.ErrNotFound):
				errs[i] = fmt.Errorf("change visibility in %s: message %s does not exist: %w", q.name, id, tally.ErrInvalidArgument)
			case errors.Is(err, tally.ErrInvalidArgument):
				errs[i] = fmt.Errorf("change visibility in %s: %w", q.name, err)
			default:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("change visibility in %s: %w", q.name, err)
	}
	if released {
		q.b.notify(q.id)
	}
	return errs, nil
}

// explainMiss says why a handle for message id matched nothing: an error
// wrapping tally.ErrNotFound if the message is gone, or
// tally.ErrInvalidArgument if the handle is stale or belongs to another
// queue. Any other error is the database's.
func (q *Queue) explainMiss(ctx context.Context, tx *sql.Tx, id string) error {
	var queueID int64
	err := tx.QueryRowContext(ctx, `SELECT queue_id FROM messages WHERE id = ?`, id).Scan(&queueID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("message %s: %w", id, tally.ErrNotFound)
	case err != nil:
		return err
	case queueID != q.id:
		return fmt.Errorf("message %s is not in this queue (moved to a dead-letter queue?): %w", id, tally.ErrInvalidArgument)
	default:
		return fmt.Errorf("stale receipt handle: message %s was received again since: %w", id, tally.ErrInvalidArgument)
	}
}

// Purge deletes every message in the queue.
func (q *Queue) Purge(ctx context.Context) error {
	err := sqlitedb.Tx(ctx, q.b.db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE queue_id = ?`, q.id)
		return err
	})
	if err != nil {
		return fmt.Errorf("purge %s: %w", q.name, err)
	}
	return nil
}

// Stats counts the queue's unexpired messages exactly. OldestAge is the age
// of the oldest message in any state (visible, in flight or delayed).
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	now := time.Now().UnixNano()
	var visible, inFlight, delayed int
	var oldest sql.NullInt64
	err := q.b.db.QueryRowContext(ctx, `
		SELECT
			coalesce(sum(visible_at <= ?), 0),
			coalesce(sum(visible_at > ? AND receive_count > 0), 0),
			coalesce(sum(visible_at > ? AND receive_count = 0), 0),
			min(sent_at)
		FROM messages WHERE queue_id = ? AND expires_at > ?`,
		now, now, now, q.id, now).Scan(&visible, &inFlight, &delayed, &oldest)
	if err != nil {
		return queue.Stats{}, fmt.Errorf("stats of %s: %w", q.name, err)
	}
	c, err := q.config(ctx, q.b.db)
	if err != nil {
		return queue.Stats{}, fmt.Errorf("stats of %s: %w", q.name, err)
	}
	st := queue.Stats{Visible: visible, InFlight: inFlight, Delayed: delayed, Visibility: c.visibility}
	if oldest.Valid {
		st.OldestAge = max(time.Duration(now-oldest.Int64), 0)
	}
	return st, nil
}

// newMessageID returns a random UUID (version 4), the form SQS uses.
func newMessageID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// tokenLen is the length of a receipt token in hex digits.
const tokenLen = 32

// newToken returns a fresh per-receive token.
func newToken() string {
	var b [tokenLen / 2]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// parseHandle splits a receipt handle "<message id>.<token>".
func parseHandle(h string) (id, token string, err error) {
	id, token, ok := strings.Cut(h, ".")
	if !ok || len(id) != 36 || len(token) != tokenLen || !isHex(strings.ReplaceAll(id, "-", "")) || !isHex(token) {
		return "", "", fmt.Errorf("receipt handle %q is not valid: %w", truncate(h, 100), tally.ErrInvalidArgument)
	}
	return id, token, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// orDefault returns v, or def when v is zero.
func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// addReceivedAt adds the received_at column to a queue file written before
// Tally recorded when the current receive happened.
func addReceivedAt(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('messages')`)
	if err != nil {
		return fmt.Errorf("read messages columns: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		if name == "received_at" {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	return sqlitedb.Tx(ctx, db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `ALTER TABLE messages ADD COLUMN received_at INTEGER`)
		if err != nil && strings.Contains(err.Error(), "duplicate column") {
			return nil // another process added it first
		}
		return err
	})
}

var _ queue.Inspector = (*Queue)(nil)

// InFlight lists the queue's in-flight messages, longest in flight first.
// Messages received before received_at was recorded report their first
// receive instead.
func (q *Queue) InFlight(ctx context.Context, limit int) ([]queue.InFlight, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("in-flight messages of %s: limit %d: %w", q.name, limit, tally.ErrInvalidArgument)
	}
	now := time.Now().UnixNano()
	rows, err := q.b.db.QueryContext(ctx, `
		SELECT id, receive_count, coalesce(received_at, first_received_at, sent_at), visible_at, sent_at, attributes
		FROM messages WHERE queue_id = ? AND visible_at > ? AND receive_count > 0 AND expires_at > ?
		ORDER BY 3 LIMIT ?`, q.id, now, now, limit)
	if err != nil {
		return nil, fmt.Errorf("in-flight messages of %s: %w", q.name, err)
	}
	defer rows.Close()
	var out []queue.InFlight
	for rows.Next() {
		var m queue.InFlight
		var received, visible, sent int64
		var attrs sql.NullString
		if err := rows.Scan(&m.ID, &m.ReceiveCount, &received, &visible, &sent, &attrs); err != nil {
			return nil, fmt.Errorf("in-flight messages of %s: %w", q.name, err)
		}
		m.ReceivedAt, m.VisibleAt, m.SentAt = time.Unix(0, received), time.Unix(0, visible), time.Unix(0, sent)
		if attrs.Valid {
			if err := json.Unmarshal([]byte(attrs.String), &m.Attributes); err != nil {
				return nil, fmt.Errorf("in-flight message %s: attributes: %w", m.ID, err)
			}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Release makes in-flight messages received before receivedBefore visible
// now. Their receipt tokens are cleared, so the consumer that held one can
// no longer delete it and the message is delivered again.
func (q *Queue) Release(ctx context.Context, receivedBefore time.Time) (int, error) {
	var n int64
	err := sqlitedb.Tx(ctx, q.b.db, func(tx *sql.Tx) error {
		now := time.Now().UnixNano()
		res, err := tx.ExecContext(ctx, `
			UPDATE messages SET visible_at = ?, token = NULL
			WHERE queue_id = ? AND visible_at > ? AND receive_count > 0
				AND coalesce(received_at, first_received_at, sent_at) < ?`,
			now, q.id, now, receivedBefore.UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release in-flight messages of %s: %w", q.name, err)
	}
	if n > 0 {
		q.b.notify(q.id)
	}
	return int(n), nil
}
