// Package vector is Tally's vector store, the replacement for ChromaDB
// tarballs on S3 and EFS. It is built only on the blob and items ports, so it
// behaves the same on local files and on S3 + DynamoDB.
//
// The story of a vector:
//
//  1. A processing run writes a delta: one small immutable segment with its
//     upserts and tombstones (WriteDelta), then registers it in the items
//     store under a sequence number that orders it after every delta
//     registered before it.
//  2. The compactor, holding the collection's lease, merges every registered
//     delta not yet applied into the next version: an immutable manifest
//     naming its segments. It publishes the version with one transaction
//     that checks its lease (fencing), moves the collection's head pointer
//     from the version it read to the new one, and marks each merged delta
//     applied — so a delta is in a version exactly once, and a compactor
//     whose lease lapsed can never publish.
//  3. Readers open the head version, cache segments on local disk by their
//     immutable names (a warm reader downloads only new segments), and add
//     the deltas registered but not applied in that version, so a search
//     sees a write as soon as its delta is registered.
package vector

import (
	"fmt"
	"regexp"

	"github.com/tallyhq/tally"
)

// The collections Tally's pipeline writes (DESIGN §3); any valid name works.
const (
	CollectionLines = "lines"
	CollectionWords = "words"
)

// Record is one vector with its id and metadata. Metadata values are
// string, float64 (ints are accepted) or bool.
type Record struct {
	ID     string
	Vector []float32
	Meta   map[string]any
}

// Hit is one search result.
type Hit struct {
	ID    string
	Score float32 // cosine similarity, higher is closer
	Meta  map[string]any
}

// FilterOp is how a Filter compares a metadata field.
type FilterOp string

// The filter comparisons.
const (
	OpEq  FilterOp = "="
	OpNe  FilterOp = "!="
	OpIn  FilterOp = "in"
	OpNin FilterOp = "not in"
)

// Filter restricts a search to records whose metadata field matches. A
// record without the field fails = and in, and passes != and not in.
type Filter struct {
	Field  string
	Op     FilterOp
	Values []any // one value for = and !=
}

var collectionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidateCollection rejects names that cannot be a collection (they become
// blob key segments and item keys).
func ValidateCollection(name string) error {
	if !collectionRE.MatchString(name) {
		return fmt.Errorf("collection %q: want 1–63 of [a-z0-9_-], starting with a letter or digit: %w", name, tally.ErrInvalidArgument)
	}
	return nil
}
