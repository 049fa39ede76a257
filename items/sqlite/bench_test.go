package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyhq/tally/items"
)

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// word is a realistic receipt-word item with GSI attributes.
func word(image string, r, l, w int) items.Item {
	it := items.Item{
		"PK":            "IMAGE#" + image,
		"SK":            fmt.Sprintf("RECEIPT#%05d#LINE#%05d#WORD#%05d", r, l, w),
		"TYPE":          "RECEIPT_WORD",
		"text":          "TOTAL",
		"confidence":    0.97,
		"bounding_box":  map[string]any{"x": 0.1, "y": 0.5, "width": 0.2, "height": 0.03},
		"angle_degrees": 0.5,
	}
	if w == 0 {
		it["SK"] = fmt.Sprintf("RECEIPT#%05d#LINE#%05d", r, l)
		it["TYPE"] = "RECEIPT_LINE"
	}
	if w%10 == 3 { // a labelled word
		it["GSI1PK"] = "LABEL#TOTAL"
		it["GSI1SK"] = "IMAGE#" + image + "#" + it["SK"].(string)
	}
	return it
}

func BenchmarkBatchPut(b *testing.B) {
	ctx := context.Background()
	tbl := open(b, filepath.Join(b.TempDir(), "items.db"))
	image, batch := uuid(), 0
	for b.Loop() {
		puts := make([]items.Item, 0, items.MaxBatchWrite)
		for w := 0; w < items.MaxBatchWrite; w++ {
			puts = append(puts, word(image, 1, batch, w+1))
		}
		batch++
		if err := tbl.BatchWrite(ctx, puts, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*items.MaxBatchWrite)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkQuery measures one page query (~20 items) over a table of 1M
// items: 2000 images × 25 lines × (1 line + 19 words).
func BenchmarkQuery(b *testing.B) {
	const images, lines, words = 2000, 25, 19
	ctx := context.Background()
	tbl := open(b, filepath.Join(b.TempDir(), "items.db"))
	start := time.Now()
	ids := make([]string, images)
	var pending []items.Item
	flush := func() {
		if err := tbl.writeMany(ctx, pending, nil); err != nil {
			b.Fatal(err)
		}
		pending = pending[:0]
	}
	for i := range ids {
		ids[i] = uuid()
		for l := 1; l <= lines; l++ {
			for w := 0; w <= words; w++ {
				it, err := items.PrepareItem(word(ids[i], 1, l, w), tbl.indexes)
				if err != nil {
					b.Fatal(err)
				}
				pending = append(pending, it)
			}
		}
		if len(pending) >= 20000 {
			flush()
		}
	}
	flush()
	b.Logf("built %d items in %s", images*lines*(words+1), time.Since(start).Round(time.Millisecond))

	b.Run("Table", func(b *testing.B) {
		i := 0
		for b.Loop() {
			q := items.Query{PK: "IMAGE#" + ids[i%images],
				SK: items.SKCond{Op: items.SKBeginsWith, Value: fmt.Sprintf("RECEIPT#00001#LINE#%05d", i%lines+1)}}
			page, err := tbl.Query(ctx, q)
			if err != nil || len(page.Items) != words+1 {
				b.Fatalf("query: %d items, %v", len(page.Items), err)
			}
			i++
		}
	})
	b.Run("GSI1", func(b *testing.B) {
		i := 0
		for b.Loop() {
			q := items.Query{Index: "GSI1", PK: "LABEL#TOTAL",
				SK: items.SKCond{Op: items.SKBeginsWith, Value: "IMAGE#" + ids[i%images] + "#"}}
			page, err := tbl.Query(ctx, q)
			if err != nil || len(page.Items) != 2*lines {
				b.Fatalf("query: %d items, %v", len(page.Items), err)
			}
			i++
		}
	})
	b.Run("Get", func(b *testing.B) {
		i := 0
		for b.Loop() {
			k := items.Key{PK: "IMAGE#" + ids[i%images], SK: fmt.Sprintf("RECEIPT#00001#LINE#%05d#WORD#%05d", i%lines+1, i%words+1)}
			if _, err := tbl.Get(ctx, k); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
