// Package sqlite is the embedded text index: SQLite FTS5 in one file, safe
// to share between goroutines and between OS processes on the same machine.
//
// Rows live in an ordinary table (text_docs), indexed on image id so that Put
// and Delete touch only one image's rows; an external-content FTS5 table
// (text_fts) indexes their text, kept in step by triggers. The tokenizer is
// unicode61 with remove_diacritics 2, so matching ignores case and accents
// ("CAFÉ" finds "cafe"), and with combining marks counted as part of words,
// so that Thai and Devanagari words are not cut at their vowel signs; there
// is no stemming. Hits are ranked by bm25 and
// snippeted by FTS5's snippet(). Queries reach MATCH only as
// textindex.Parsed.FTS5, never as the user's text, so no input is an FTS5
// syntax error.
//
// Put is one BEGIN IMMEDIATE transaction (delete the image's rows, insert
// the new ones), so a concurrent reader in any process sees the old rows or
// the new, never both or neither; WAL keeps searches from waiting for it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/tallyhq/tally/internal/sqlitedb"
	"github.com/tallyhq/tally/textindex"
)

// snippetTokens is the most tokens snippet() shows around the matches:
// enough for a whole receipt row, which is rarely longer.
const snippetTokens = 24

var schema = []string{
	`CREATE TABLE IF NOT EXISTS text_docs (
		id         INTEGER PRIMARY KEY,
		image_id   TEXT    NOT NULL,
		receipt_id INTEGER NOT NULL,
		row_id     INTEGER NOT NULL,
		line_ids   TEXT    NOT NULL,
		text       TEXT    NOT NULL,
		merchant   TEXT    NOT NULL,
		date       TEXT    NOT NULL,
		UNIQUE (image_id, receipt_id, row_id)
	)`,
	// Only text is indexed; the other columns are read back from text_docs
	// by rowid for the rows a search returns. The prefix indexes of two and
	// three characters make short prefixes (gr* tot*) cheaper to expand,
	// for a fifth more file.
	`CREATE VIRTUAL TABLE IF NOT EXISTS text_fts USING fts5(
		text,
		image_id UNINDEXED, receipt_id UNINDEXED, row_id UNINDEXED,
		line_ids UNINDEXED, merchant UNINDEXED, date UNINDEXED,
		content = 'text_docs', content_rowid = 'id',
		tokenize = 'unicode61 remove_diacritics 2 categories ''L* N* Co M*''',
		prefix = '2 3'
	)`,
	`CREATE TRIGGER IF NOT EXISTS text_docs_insert AFTER INSERT ON text_docs BEGIN
		INSERT INTO text_fts (rowid, text) VALUES (new.id, new.text);
	END`,
	`CREATE TRIGGER IF NOT EXISTS text_docs_delete AFTER DELETE ON text_docs BEGIN
		INSERT INTO text_fts (text_fts, rowid, text) VALUES ('delete', old.id, old.text);
	END`,
	`CREATE TRIGGER IF NOT EXISTS text_docs_update AFTER UPDATE ON text_docs BEGIN
		INSERT INTO text_fts (text_fts, rowid, text) VALUES ('delete', old.id, old.text);
		INSERT INTO text_fts (rowid, text) VALUES (new.id, new.text);
	END`,
}

// Index is a text index in one SQLite file.
type Index struct {
	db   *sql.DB
	path string
	once sync.Once
	err  error
}

var _ textindex.Index = (*Index)(nil)

// Open opens (creating if needed) the index file at path. Several Index
// values, in one process or several, may have the same file open.
func Open(ctx context.Context, path string) (*Index, error) {
	db, err := sqlitedb.Open(ctx, path, schema...)
	if err != nil {
		return nil, fmt.Errorf("open text index: %w", err)
	}
	return &Index{db: db, path: path}, nil
}

// Path is the file the index is in, for opening it again elsewhere.
func (x *Index) Path() string { return x.path }

// Close closes the file; closing twice is not an error.
func (x *Index) Close() error {
	x.once.Do(func() { x.err = x.db.Close() })
	return x.err
}

// Put replaces every doc of the image with docs in one transaction.
func (x *Index) Put(ctx context.Context, imageID string, docs []textindex.Doc) error {
	docs, err := textindex.PrepareDocs(imageID, docs)
	if err != nil {
		return err
	}
	err = sqlitedb.Tx(ctx, x.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM text_docs WHERE image_id = ?`, imageID); err != nil {
			return err
		}
		if len(docs) == 0 {
			return nil
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO text_docs
			(image_id, receipt_id, row_id, line_ids, text, merchant, date) VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, d := range docs {
			if _, err := ins.ExecContext(ctx, imageID, d.ReceiptID, d.RowID, formatIDs(d.LineIDs), d.Text, d.Merchant, d.Date); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put text docs of image %q: %w", imageID, ctxErr(ctx, err))
	}
	return nil
}

// Delete removes every doc of the image.
func (x *Index) Delete(ctx context.Context, imageID string) error {
	err := sqlitedb.Tx(ctx, x.db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM text_docs WHERE image_id = ?`, imageID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete text docs of image %q: %w", imageID, ctxErr(ctx, err))
	}
	return nil
}

// Search returns the rows matching q, best bm25 score first. ORDER BY rank
// alone lets FTS5 sort the matches itself, so snippet() and highlight() run
// only for the rows returned, not for every match.
func (x *Index) Search(ctx context.Context, q textindex.Query) ([]textindex.Hit, error) {
	limit, err := q.EffectiveLimit()
	if err != nil {
		return nil, err
	}
	parsed, err := textindex.ParseQuery(q.Text)
	if err != nil {
		return nil, err
	}
	rows, err := x.db.QueryContext(ctx, `
		SELECT image_id, receipt_id, row_id, line_ids, text, merchant, date,
		       snippet(text_fts, 0, char(2), char(3), '…', ?),
		       highlight(text_fts, 0, char(2), char(3)),
		       rank
		FROM text_fts WHERE text_fts MATCH ? ORDER BY rank LIMIT ?`,
		snippetTokens, parsed.FTS5(), limit)
	if err != nil {
		return nil, fmt.Errorf("search text index for %s: %w", parsed, ctxErr(ctx, err))
	}
	defer rows.Close()
	hits := []textindex.Hit{}
	for rows.Next() {
		var (
			h         textindex.Hit
			lines     string
			highlight string
			rank      float64
		)
		if err := rows.Scan(&h.ImageID, &h.ReceiptID, &h.RowID, &lines, &h.Text, &h.Merchant, &h.Date, &h.Snippet, &highlight, &rank); err != nil {
			return nil, fmt.Errorf("search text index for %s: %w", parsed, ctxErr(ctx, err))
		}
		if h.LineIDs, err = parseIDs(lines); err != nil {
			return nil, fmt.Errorf("search text index: image %q receipt %d row %d: %w", h.ImageID, h.ReceiptID, h.RowID, err)
		}
		h.Terms = textindex.MatchedTerms(highlight)
		h.Score = -rank // bm25 is lower-is-better
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search text index for %s: %w", parsed, ctxErr(ctx, err))
	}
	return hits, nil
}

// ctxErr makes an error caused by ctx ending wrap ctx.Err(), whatever the
// driver reported (SQLite says "interrupted"), so callers can test it with
// errors.Is.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// formatIDs stores line ids as "3,4,5": compact, and readable with sqlite3.
func formatIDs(ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(id))
	}
	return b.String()
}

func parseIDs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	ids := make([]int, len(parts))
	for i, p := range parts {
		id, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("bad line ids %q: %w", s, err)
		}
		ids[i] = id
	}
	return ids, nil
}
