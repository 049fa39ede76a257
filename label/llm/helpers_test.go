package llm

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/fakes"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocr"
)

const testModel = "gpt-test-mini"

// testLine is one OCR line of the test receipt: its words left to right
// from x, at height y (normalized, y up).
type testLine struct {
	x, y  float64
	words []string
}

// testLines is a small receipt. Lines 8 and 9 are one printed row that
// OCR split ("TOTAL" … "6.47").
var testLines = []testLine{
	1:  {0.35, 0.95, []string{"WALMART"}},
	2:  {0.25, 0.90, []string{"123", "MAIN", "ST"}},
	3:  {0.10, 0.85, []string{"12/25/2023", "14:30"}},
	4:  {0.10, 0.70, []string{"MILK", "3.49"}},
	5:  {0.10, 0.65, []string{"BREAD", "2.50"}},
	6:  {0.10, 0.55, []string{"SUBTOTAL", "5.99"}},
	7:  {0.10, 0.50, []string{"TAX", "0.48"}},
	8:  {0.10, 0.45, []string{"TOTAL"}},
	9:  {0.80, 0.45, []string{"6.47"}},
	10: {0.10, 0.40, []string{"VISA", "1234"}},
}

// geometry is an upright box at (x, y) of size w×h, corners included.
func geometry(x, y, w, h float64) ocr.Geometry {
	return ocr.Geometry{
		BoundingBox: ocr.BoundingBox{X: x, Y: y, Width: w, Height: h},
		TopLeft:     ocr.Point{X: x, Y: y + h}, TopRight: ocr.Point{X: x + w, Y: y + h},
		BottomLeft: ocr.Point{X: x, Y: y}, BottomRight: ocr.Point{X: x + w, Y: y},
		Confidence: 0.99,
	}
}

// testReceipt builds the receipt of testLines, each line its own row but
// lines 8 and 9 sharing one. Without rows, Rows is left empty.
func testReceipt(withRows bool) label.Receipt {
	r := label.Receipt{ImageID: "img-1", ReceiptID: 1, Width: 600, Height: 1600}
	const wordW, wordH = 0.15, 0.03
	for id := 1; id < len(testLines); id++ {
		tl := testLines[id]
		lineW := float64(len(tl.words))*0.2 - 0.05
		r.Lines = append(r.Lines, entities.ReceiptLine{ImageID: r.ImageID, ReceiptID: 1, LineID: id,
			Text: strings.Join(tl.words, " "), Geometry: geometry(tl.x, tl.y, lineW, wordH)})
		for i, text := range tl.words {
			r.Words = append(r.Words, entities.ReceiptWord{ImageID: r.ImageID, ReceiptID: 1, LineID: id, WordID: i + 1,
				Text: text, Geometry: geometry(tl.x+float64(i)*0.2, tl.y, wordW, wordH)})
		}
	}
	if withRows {
		groups := [][]int{{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8, 9}, {10}}
		for i, ids := range groups {
			var texts []string
			for _, id := range ids {
				texts = append(texts, strings.Join(testLines[id].words, " "))
			}
			r.Rows = append(r.Rows, entities.ReceiptRow{ImageID: r.ImageID, ReceiptID: 1, RowID: i + 1,
				LineIDs: ids, Text: strings.Join(texts, " ")})
		}
	}
	return r
}

// rulesProposal is what the rules engine might say about testReceipt: it
// took the subtotal for the grand total and the tax for a tip, found no
// date and missed BREAD.
func rulesProposal() label.Proposal {
	return label.Proposal{
		Fields: map[string]entities.SummaryField{
			label.MerchantName:  {Text: "WALMART", Value: "WALMART", Words: []entities.WordRef{{1, 1}}, Confidence: 0.9, Source: label.SourceRules},
			label.GrandTotal:    {Text: "5.99", Value: "5.99", Words: []entities.WordRef{{6, 2}}, Confidence: 0.6, Source: label.SourceRules},
			label.PaymentMethod: {Text: "VISA", Value: "VISA", Words: []entities.WordRef{{10, 1}}, Confidence: 0.9, Source: label.SourceRules},
			label.Tip:           {Text: "0.48", Value: "0.48", Words: []entities.WordRef{{7, 2}}, Confidence: 0.4, Source: label.SourceRules},
		},
		Items: []entities.ReceiptLineItem{{ImageID: "img-1", ReceiptID: 1, Name: "MILK", Price: "3.49",
			LineIDs: []int{4}, WordRefs: []entities.WordRef{{4, 1}, {4, 2}}, RawText: "MILK 3.49"}},
		Labels: []label.WordLabel{
			{Word: entities.WordRef{1, 1}, Label: label.MerchantName, Confidence: 0.9, Source: label.SourceRules},
			{Word: entities.WordRef{6, 2}, Label: label.GrandTotal, Confidence: 0.6, Source: label.SourceRules},
			{Word: entities.WordRef{7, 2}, Label: label.Tip, Confidence: 0.4, Source: label.SourceRules},
			{Word: entities.WordRef{10, 1}, Label: label.PaymentMethod, Confidence: 0.9, Source: label.SourceRules},
		},
		Doubts: []string{"two amounts could be the total: 5.99, 6.47"},
		Source: label.SourceRules,
	}
}

// ans is an answer as the model would write it, spelled out with maps so
// the tests check the decoder against the schema's wire format rather than
// against the package's own types.
type ans = map[string]any

func field(l string, words [][2]int, value string) ans {
	return ans{"label": l, "words": pairs(words), "value": value}
}

func pairs(ws [][2]int) []any {
	out := []any{}
	for _, w := range ws {
		out = append(out, []int{w[0], w[1]})
	}
	return out
}

func wordLabel(line, word int, l string) ans {
	return ans{"line_id": line, "word_id": word, "label": l}
}

// goodAnswer corrects rulesProposal: the real grand total, the date, the
// address, the subtotal and tax, both items, and labels for them.
func goodAnswer() ans {
	return ans{
		"reasoning": "The rules took the subtotal for the total; the total is 6.47 on the TOTAL row.",
		"fields": []any{
			field(label.MerchantName, [][2]int{{1, 1}}, "Walmart"),
			field(label.AddressLine, [][2]int{{2, 1}, {2, 2}, {2, 3}}, "123 Main St"),
			field(label.Date, [][2]int{{3, 1}}, "2023-12-25"),
			field(label.Time, [][2]int{{3, 2}}, "14:30"),
			field(label.Subtotal, [][2]int{{6, 2}}, "5.99"),
			field(label.Tax, [][2]int{{7, 2}}, "$0.48"),
			field(label.GrandTotal, [][2]int{{9, 1}}, "6.470"),
			field(label.Tip, nil, ""), // not printed: the rules' TIP goes
		},
		"line_items": []any{
			ans{"name": "Milk", "quantity": "", "unit_price": "", "price": "3.49", "is_discount": false, "words": pairs([][2]int{{4, 1}, {4, 2}})},
			ans{"name": "Bread", "quantity": "1", "unit_price": "", "price": "2.5", "is_discount": false, "words": pairs([][2]int{{5, 1}, {5, 2}})},
		},
		"labels": []any{
			wordLabel(1, 1, label.MerchantName),
			wordLabel(4, 1, label.ProductName), wordLabel(4, 2, label.LineTotal),
			wordLabel(5, 1, label.ProductName), wordLabel(5, 2, label.LineTotal),
			wordLabel(9, 1, label.GrandTotal),
		},
		"currency": "usd",
	}
}

// with returns a copy of a (one level deep) with key set to v.
func with(a ans, key string, v any) ans {
	out := ans{}
	for k, x := range a {
		out[k] = x
	}
	out[key] = v
	return out
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// reply answers 200 with a completion whose content is content.
func reply(content, finish string) fakes.ChatReply {
	return fakes.ChatReply{Body: fakes.ChatCompletion(testModel, content, finish)}
}

// always answers every request alike.
func always(rep fakes.ChatReply) func(fakes.ChatRequest) fakes.ChatReply {
	return func(fakes.ChatRequest) fakes.ChatReply { return rep }
}

// script answers request n with steps[n], and later ones with the last.
func script(steps ...fakes.ChatReply) func(fakes.ChatRequest) fakes.ChatReply {
	return func(req fakes.ChatRequest) fakes.ChatReply { return steps[min(req.N, len(steps)-1)] }
}

// sleepRecorder replaces real waiting between retries.
type sleepRecorder struct {
	mu     sync.Mutex
	waited []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waited = append(s.waited, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) durations() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waited...)
}

// newTestRefiner points a Refiner at baseURL with recorded sleeps and a
// fixed jitter of 0.5 (so backoff waits are exactly half their ceiling).
func newTestRefiner(t *testing.T, baseURL string, opts Options) (*Refiner, *sleepRecorder) {
	t.Helper()
	rec := &sleepRecorder{}
	opts.BaseURL = baseURL
	if opts.APIKey == "" {
		opts.APIKey = "sk-test"
	}
	if opts.Model == "" {
		opts.Model = testModel
	}
	opts.Sleep = rec.sleep
	opts.Rand = func() float64 { return 0.5 }
	rf, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return rf, rec
}

func openTable(t testing.TB) items.Table {
	t.Helper()
	tbl, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

// failingTable is an item store whose reads and writes all fail.
type failingTable struct{ items.Table }

var errTableDown = errors.New("table down")

func (failingTable) Get(context.Context, items.Key) (items.Item, error) { return nil, errTableDown }
func (failingTable) Put(context.Context, items.Item, items.Cond) error  { return errTableDown }

// syncBuffer is a log sink safe for the handler's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func wordRefsOf(ws ...[2]int) []entities.WordRef {
	out := make([]entities.WordRef, len(ws))
	for i, w := range ws {
		out[i] = entities.WordRef(w)
	}
	return out
}
