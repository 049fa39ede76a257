package compaction_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/items"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	good := `{"run_id":"run-1","image_id":"3f2a-11","receipt_id":2,"collections":["lines","words"]}`
	m, err := compaction.Decode(good)
	if err != nil {
		t.Fatal(err)
	}
	want := compaction.Message{RunID: "run-1", ImageID: "3f2a-11", ReceiptID: 2, Collections: []string{"lines", "words"}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("decoded %+v, want %+v", m, want)
	}
	body, err := m.Encode()
	if err != nil || body != good {
		t.Fatalf("encode: %s, %v; want %s", body, err, good)
	}
	// Unknown fields are ignored: newer senders may add some.
	if _, err := compaction.Decode(`{"run_id":"r","image_id":"i","receipt_id":1,"collections":["lines"],"extra":1}`); err != nil {
		t.Errorf("unknown field: %v", err)
	}
	for name, body := range map[string]string{
		"empty":             ``,
		"not json":          `run-1`,
		"truncated":         `{"run_id":"r"`,
		"trailing":          `{"run_id":"r","image_id":"i","receipt_id":1,"collections":["lines"]} {}`,
		"array":             `[]`,
		"missing run_id":    `{"image_id":"i","receipt_id":1,"collections":["lines"]}`,
		"bad run_id":        `{"run_id":"a b","image_id":"i","receipt_id":1,"collections":["lines"]}`,
		"run_id a number":   `{"run_id":7,"image_id":"i","receipt_id":1,"collections":["lines"]}`,
		"missing image_id":  `{"run_id":"r","receipt_id":1,"collections":["lines"]}`,
		"image_id with #":   `{"run_id":"r","image_id":"a#b","receipt_id":1,"collections":["lines"]}`,
		"image_id control":  `{"run_id":"r","image_id":"a\u0001","receipt_id":1,"collections":["lines"]}`,
		"missing receipt":   `{"run_id":"r","image_id":"i","collections":["lines"]}`,
		"receipt too big":   `{"run_id":"r","image_id":"i","receipt_id":100000,"collections":["lines"]}`,
		"receipt fraction":  `{"run_id":"r","image_id":"i","receipt_id":1.5,"collections":["lines"]}`,
		"no collections":    `{"run_id":"r","image_id":"i","receipt_id":1}`,
		"empty collections": `{"run_id":"r","image_id":"i","receipt_id":1,"collections":[]}`,
		"bad collection":    `{"run_id":"r","image_id":"i","receipt_id":1,"collections":["Lines"]}`,
		"null collection":   `{"run_id":"r","image_id":"i","receipt_id":1,"collections":[null]}`,
		"twice":             `{"run_id":"r","image_id":"i","receipt_id":1,"collections":["lines","lines"]}`,
		"huge":              `{"run_id":"` + strings.Repeat("x", 10000) + `"}`,
	} {
		_, err := compaction.Decode(body)
		if !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
		if err != nil && len(err.Error()) > 600 {
			t.Errorf("%s: error of %d bytes; bodies must be clipped", name, len(err.Error()))
		}
	}
	if _, err := (compaction.Message{RunID: "r"}).Encode(); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("encoding an invalid message: %v", err)
	}
}

// TestCreateRun: the item has the documented layout, is in the pending
// index, and creating it again keeps the first.
func TestCreateRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	r := compaction.Run{RunID: "run-1", ImageID: "img", ReceiptID: 7, Collections: []string{"lines", "words"}, CreatedAt: created}
	if err := compaction.CreateRun(b.ctx, b.items, r); err != nil {
		t.Fatal(err)
	}
	again := r
	again.CreatedAt = created.Add(time.Hour)
	if err := compaction.CreateRun(b.ctx, b.items, again); err != nil {
		t.Fatalf("creating again: %v", err)
	}
	it, err := b.items.Get(b.ctx, items.Key{PK: "IMAGE#img", SK: "RECEIPT#00007#COMPACTION_RUN#run-1"})
	if err != nil {
		t.Fatal(err)
	}
	for attr, want := range map[string]any{
		"TYPE": "COMPACTION_RUN", "run_id": "run-1", "image_id": "img", "receipt_id": int64(7),
		"status": "PENDING", "lines_state": "PENDING", "words_state": "PENDING",
		"created_at": "2025-03-01T12:00:00.000000000Z", "GSI3PK": "COMPACTION_RUN#PENDING",
		"GSI3SK": "2025-03-01T12:00:00.000000000Z",
	} {
		if !reflect.DeepEqual(it[attr], want) {
			t.Errorf("%s = %#v, want %#v", attr, it[attr], want)
		}
	}
	got := b.getRun(t, r.Message())
	if !got.CreatedAt.Equal(created) || got.Status != compaction.StatusPending || !reflect.DeepEqual(got.Collections, r.Collections) {
		t.Errorf("read back %+v", got)
	}
	if p := b.pending(t); len(p) != 1 || p[0] != "run-1" {
		t.Errorf("pending index: %v", p)
	}
	if err := compaction.CreateRun(b.ctx, b.items, compaction.Run{RunID: "r", ImageID: "i"}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("invalid run: %v", err)
	}
}
