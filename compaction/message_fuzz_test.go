package compaction_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/compaction"
)

// FuzzDecode: a compaction body either decodes to a message that
// validates and survives Encode → Decode unchanged, or is
// tally.ErrInvalidArgument with an error short enough to log (bodies and
// fields are clipped, never quoted whole).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"run_id":"run-1","image_id":"3f2a-11","receipt_id":2,"collections":["lines","words"]}`,
		`{"run_id":"r","image_id":"i","receipt_id":1,"collections":["lines"],"extra":1}`,
		`{"run_id":"r:1=2.3_x","image_id":"a/b <c>&","receipt_id":99999,"collections":["a-b_c","0"]}`,
		``, `run-1`, `{"run_id":"r"`, `{"run_id":"r","image_id":"i","receipt_id":1,"collections":["lines"]} {}`, `[]`,
		`{"image_id":"i","receipt_id":1,"collections":["lines"]}`,
		`{"run_id":"a b","image_id":"i","receipt_id":1,"collections":["lines"]}`,
		`{"run_id":7,"image_id":"i","receipt_id":1,"collections":["lines"]}`,
		`{"run_id":"r","image_id":"a#b","receipt_id":1,"collections":["lines"]}`,
		`{"run_id":"r","image_id":"a\u0001","receipt_id":1,"collections":["lines"]}`,
		`{"run_id":"r","image_id":"i","receipt_id":100000,"collections":["lines"]}`,
		`{"run_id":"r","image_id":"i","receipt_id":1.5,"collections":["lines"]}`,
		`{"run_id":"r","image_id":"i","receipt_id":1,"collections":[]}`,
		`{"run_id":"r","image_id":"i","receipt_id":1,"collections":["Lines"]}`,
		`{"run_id":"r","image_id":"i","receipt_id":1,"collections":[null]}`,
		`{"run_id":"r","image_id":"i","receipt_id":1,"collections":["lines","lines"]}`,
		`{"run_id":"` + strings.Repeat("x", 300) + `"}`,
		`{"run_id":"r","image_id":"i","receipt_id":1,"collections":["` + strings.Repeat("\\u0001", 400) + `"]}`,
		`{"run_id":"r","image_id":"` + strings.Repeat("\\u0080", 256) + `#","receipt_id":1,"collections":["lines"]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		m, err := compaction.Decode(body)
		if err != nil {
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Fatalf("Decode(%q) = %v, want tally.ErrInvalidArgument", body, err)
			}
			if n := len(err.Error()); n > 1200 {
				t.Fatalf("error of %d bytes for a %d-byte body: fields must be clipped: %.300s…", n, len(body), err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded an invalid message: %v", err)
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode of a decoded message: %v", err)
		}
		m2, err := compaction.Decode(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip of %+v = %+v, %v", m, m2, err)
		}
	})
}
