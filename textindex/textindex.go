// Package textindex is the port for full-text search over receipts' OCR
// text: the search box of the web app. The unit of search is one visual row
// of a receipt (a Doc), so that a hit can point at the lines on the image
// that matched, not just at the receipt.
//
// Users type Tally's own small query syntax (see ParseQuery), never a
// backend's: bare words that must all match, "exact phrases" and prefix*
// words. Every adapter translates the parsed query itself, so no input a
// user can type is a syntax error of the backend, and every adapter rejects
// the same bad queries with tally.ErrInvalidArgument.
//
// The embedded adapter is textindex/sqlite (SQLite FTS5). Adapters pass the
// conformance suite in textindex/textindextest.
package textindex

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tallyhq/tally"
)

// Limits on a Search.
const (
	// DefaultLimit is the number of hits a Query with Limit 0 returns: a
	// page of results, not the whole archive.
	DefaultLimit = 20
	// MaxLimit caps Query.Limit, so that one request cannot make the
	// backend rank and snippet an unbounded number of rows.
	MaxLimit = 200
)

// The markers around matched text in Hit.Snippet. They are control
// characters that OCR text does not contain (Put removes them from Doc.Text),
// so the web app can HTML-escape the snippet first and then turn the markers
// into <mark> tags: the index never produces HTML.
const (
	MarkStart = "\x02"
	MarkEnd   = "\x03"
)

// Doc is one visual row of a receipt: the text of the OCR lines that sit at
// the same height, with the ids needed to find them again on the image.
type Doc struct {
	// ImageID is the image the receipt was found on. Put fills it in when
	// empty; a Doc naming another image than Put's is invalid.
	ImageID string
	// ReceiptID is the receipt's 1-based position on the image.
	ReceiptID int
	// RowID identifies the row within the receipt; (ReceiptID, RowID) is
	// unique within an image.
	RowID int
	// LineIDs are the OCR lines that make up the row, for highlighting them
	// on the image.
	LineIDs []int
	// Text is what is searched.
	Text string
	// Merchant and Date are the receipt's, returned with every hit so that
	// a results page can label it without loading the receipt. They are
	// not searched.
	Merchant string
	Date     string
}

// Query is one search.
type Query struct {
	// Text is in Tally's query syntax (ParseQuery).
	Text string
	// Limit is the most hits to return: 0 means DefaultLimit, more than
	// MaxLimit means MaxLimit, negative is invalid.
	Limit int
}

// Hit is one matching row.
type Hit struct {
	ImageID   string
	ReceiptID int
	RowID     int
	LineIDs   []int
	// Text is the row's whole text, as it was put.
	Text     string
	Merchant string
	Date     string
	// Snippet is the part of Text around the matches, each match between
	// MarkStart and MarkEnd. It is plain text, not HTML (see Spans).
	Snippet string
	// Terms are the distinct words of Text that matched the query, spelled
	// as in Text ("Café" for the query cafe, "CHOCOLATE" for choc*), so the
	// UI can highlight them in the row or find them among the image's words.
	Terms []string
	// Score orders the hits of one search, higher is better. It is not
	// comparable between searches or adapters.
	Score float64
}

// Index is a full-text index of receipt rows.
//
// A Search that starts after a Put or Delete returned sees its effect, and
// never sees half of a Put. Implementations are safe for concurrent use.
type Index interface {
	// Put replaces every doc of the image with docs, atomically, so that a
	// redelivered record rewrites the same docs instead of adding copies.
	// Put with no docs removes the image, like Delete.
	Put(ctx context.Context, imageID string, docs []Doc) error
	// Delete removes every doc of the image; deleting an image that has
	// none is not an error.
	Delete(ctx context.Context, imageID string) error
	// Search returns the rows that match q, best first (equal scores in no
	// particular order), at most one hit per row. No match is an empty,
	// non-nil result and a nil error; a query that ParseQuery rejects, or a
	// negative Limit, is tally.ErrInvalidArgument.
	Search(ctx context.Context, q Query) ([]Hit, error)
	// Close releases the index; using it afterwards is an error.
	Close() error
}

// EffectiveLimit is the number of hits q asks for once defaults and caps are
// applied, so that every adapter reads Limit the same way.
func (q Query) EffectiveLimit() (int, error) {
	switch {
	case q.Limit < 0:
		return 0, fmt.Errorf("search limit %d is negative: %w", q.Limit, tally.ErrInvalidArgument)
	case q.Limit == 0:
		return DefaultLimit, nil
	case q.Limit > MaxLimit:
		return MaxLimit, nil
	}
	return q.Limit, nil
}

// PrepareDocs validates the arguments of Put and returns the docs as an
// adapter should store them: ImageID filled in, text made valid UTF-8 with
// the snippet markers removed. It rejects, with tally.ErrInvalidArgument, an
// empty image id, a doc of another image and two docs for the same row, so
// that every adapter fails the same inputs the same way.
func PrepareDocs(imageID string, docs []Doc) ([]Doc, error) {
	if imageID == "" {
		return nil, fmt.Errorf("put text docs: empty image id: %w", tally.ErrInvalidArgument)
	}
	type rowKey struct{ receipt, row int }
	seen := make(map[rowKey]bool, len(docs))
	out := make([]Doc, len(docs))
	for i, d := range docs {
		if d.ImageID == "" {
			d.ImageID = imageID
		}
		if d.ImageID != imageID {
			return nil, fmt.Errorf("put text docs of image %q: doc %d is of image %q: %w", imageID, i, d.ImageID, tally.ErrInvalidArgument)
		}
		k := rowKey{d.ReceiptID, d.RowID}
		if seen[k] {
			return nil, fmt.Errorf("put text docs of image %q: receipt %d row %d given twice: %w", imageID, d.ReceiptID, d.RowID, tally.ErrInvalidArgument)
		}
		seen[k] = true
		d.Text = cleanText(d.Text)
		d.Merchant = strings.ToValidUTF8(d.Merchant, "\uFFFD")
		d.Date = strings.ToValidUTF8(d.Date, "\uFFFD")
		d.LineIDs = slices.Clone(d.LineIDs)
		out[i] = d
	}
	return out, nil
}

// cleanText makes s valid UTF-8 and replaces the snippet markers with
// spaces, so that a marker in a snippet always comes from the index.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsAny(s, MarkStart+MarkEnd) {
		return s
	}
	return strings.NewReplacer(MarkStart, " ", MarkEnd, " ").Replace(s)
}

// Span is a piece of a marked text such as Hit.Snippet.
type Span struct {
	Text string
	// Match says the piece matched the query.
	Match bool
}

// Spans splits a marked text (Hit.Snippet) into matched and unmatched
// pieces, in order, so that a renderer can escape each piece and mark the
// matches in whatever markup it speaks. An unclosed marker extends to the
// end; empty pieces are left out.
func Spans(marked string) []Span {
	var spans []Span
	match := false
	for marked != "" {
		sep := MarkStart
		if match {
			sep = MarkEnd
		}
		piece, rest, found := strings.Cut(marked, sep)
		if piece != "" {
			spans = append(spans, Span{Text: piece, Match: match})
		}
		if !found {
			break
		}
		marked = rest
		match = !match
	}
	return spans
}

// MatchedTerms returns the distinct matched pieces of a marked text, in order
// of first appearance, split into words: what Hit.Terms holds when the marked
// text is the whole row. Adapters whose backend marks matches use it to fill
// Hit.Terms.
func MatchedTerms(marked string) []string {
	var terms []string
	for _, sp := range Spans(marked) {
		if !sp.Match {
			continue
		}
		for _, w := range strings.Fields(sp.Text) {
			if !slices.Contains(terms, w) {
				terms = append(terms, w)
			}
		}
	}
	return terms
}
