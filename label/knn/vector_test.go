package knn

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/embed/hashed"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/vector"
)

// openStore opens a vector store on the embedded backends in dir, as the
// process stage's tests do.
func openStore(t *testing.T, dir string, dims int) (*vector.Store, *vector.Cache) {
	t.Helper()
	ctx := context.Background()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	fs, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := vector.New(vector.Options{Blob: fs, Items: tbl, Dims: dims})
	if err != nil {
		t.Fatal(err)
	}
	vc, err := vector.OpenCache(ctx, fs, vector.CacheOptions{Dir: filepath.Join(dir, "vcache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vc.Close)
	return vs, vc
}

// wordRecord is a "words" record as process/record.go writes it.
func wordRecord(t *testing.T, emb *hashed.Embedder, image string, line, word int, row []string, i int, labels, merchant string) vector.Record {
	t.Helper()
	v, err := emb.Embed(context.Background(), []string{pipeline.WordTexts(row)[i]})
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]any{"image_id": image, "receipt_id": 1, "line_id": line, "word_id": word, "text": row[i]}
	if labels != "" {
		meta["label"] = labels
	}
	if merchant != "" {
		meta["merchant_name"] = merchant
	}
	return vector.Record{ID: fmt.Sprintf("IMAGE#%s#RECEIPT#%05d#LINE#%05d#WORD#%05d", image, 1, line, word), Vector: v[0], Meta: meta}
}

func TestVectorIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emb, err := hashed.New(64)
	if err != nil {
		t.Fatal(err)
	}
	vs, vc := openStore(t, t.TempDir(), emb.Dims())
	row := []string{"TOTAL", "RM", "12.50"}
	var recs []vector.Record
	for _, img := range []string{"a", "b", "c", "self"} {
		recs = append(recs,
			wordRecord(t, emb, img, 1, 1, row, 0, "", "ACME"),                       // unlabelled: never a neighbour
			wordRecord(t, emb, img, 1, 3, row, 2, "GRAND_TOTAL,LINE_TOTAL", "ACME"), // the word itself, two labels
			wordRecord(t, emb, img, 2, 1, []string{"THANK", "YOU"}, 0, "", ""))
	}
	recs = append(recs, wordRecord(t, emb, "d", 1, 2, []string{"SERVICE", "CHARGE", "RM", "TAX", "INCL"}, 2, "TAX", ""))
	if _, err := vs.WriteDelta(ctx, vector.CollectionWords, "run-1", recs, nil); err != nil {
		t.Fatal(err)
	}
	idx, err := OpenVectorIndex(ctx, vs, vc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := emb.Embed(ctx, []string{pipeline.WordTexts(row)[2]})
	got, err := idx.Neighbours(ctx, q[0], 4, "self")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d neighbours, want 4: %+v", len(got), got)
	}
	for i, n := range got[:3] {
		if n.ImageID == "self" || n.ImageID == "d" || !reflect.DeepEqual(n.Labels, []string{"GRAND_TOTAL", "LINE_TOTAL"}) ||
			n.Merchant != "ACME" || n.Text != "12.50" || math.Abs(n.Similarity-1) > 1e-5 {
			t.Errorf("neighbour %d = %+v, want an identical GRAND_TOTAL,LINE_TOTAL word of a, b or c", i, n)
		}
	}
	if d := got[3]; d.ImageID != "d" || !reflect.DeepEqual(d.Labels, []string{"TAX"}) || d.Similarity >= got[2].Similarity || d.Similarity <= 0 {
		t.Errorf("fourth neighbour %+v, want d's TAX word, less similar", d)
	}

	// Labels written after the index was opened count once it refreshes:
	// three more receipts call the amount GRAND_TOTAL alone, which breaks
	// the GRAND_TOTAL/LINE_TOTAL tie of the first three.
	var more []vector.Record
	for _, img := range []string{"e", "f", "g"} {
		more = append(more, wordRecord(t, emb, img, 1, 3, row, 2, "GRAND_TOTAL", ""))
	}
	if _, err := vs.WriteDelta(ctx, vector.CollectionWords, "run-2", more, nil); err != nil {
		t.Fatal(err)
	}
	fresh, err := OpenVectorIndex(ctx, vs, vc, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	r := label.Receipt{ImageID: "self", ReceiptID: 1, Rows: []entities.ReceiptRow{{RowID: 1, LineIDs: []int{1}}}}
	for i, w := range row {
		rw := entities.ReceiptWord{ImageID: "self", ReceiptID: 1, LineID: 1, WordID: i + 1, Text: w}
		rw.BoundingBox.X = float64(i) / 4
		r.Words = append(r.Words, rw)
	}
	for name, x := range map[string]*VectorIndex{"stale": idx, "refreshed": fresh, "same kind": fresh} {
		rf, err := New(emb, x, Config{SameKind: name == "same kind"})
		if err != nil {
			t.Fatal(err)
		}
		out, err := rf.Refine(ctx, r, label.Proposal{Source: label.SourceRules})
		if err != nil {
			t.Fatal(err)
		}
		ls := labelsOf(out, label.SourceKNN)
		switch name {
		case "stale":
			if len(ls) != 0 {
				t.Errorf("stale index: kNN labels %+v, want none (a tie)", ls)
			}
		case "refreshed":
			// Every word of a three-word row embeds the same under the
			// hashed embedder, so the keyword and the currency take the
			// amount's label too.
			if len(ls) != 3 || ls[entities.WordRef{1, 1}].Label != label.GrandTotal || ls[entities.WordRef{1, 3}].Label != label.GrandTotal {
				t.Errorf("refreshed index: kNN labels %+v, want GRAND_TOTAL on all three words", ls)
			}
		case "same kind":
			l := ls[entities.WordRef{1, 3}]
			if len(ls) != 1 || l.Label != label.GrandTotal || l.Reasoning != "6 of 6 similar words (≥0.80) are GRAND_TOTAL" {
				t.Errorf("refreshed index: kNN labels %+v, want GRAND_TOTAL on the amount", ls)
			}
			if f := out.Fields[label.GrandTotal]; f.Value != "12.50" || f.Source != label.SourceKNN {
				t.Errorf("GRAND_TOTAL field %+v", f)
			}
		}
	}
}
