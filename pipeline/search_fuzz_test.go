package pipeline_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/pipeline"
)

// FuzzParseFilter: a search handler's where= filter either is
// tally.ErrInvalidArgument or names a trimmed field with at least one
// value, and writing it back gives the same filter.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"merchant=Costco", "receipt_id!=1|2", "label=TOTAL|TAX", "ok=true", "x=NaN", "x=1e400",
		"=a", "a=", "!=a", "a!=", "a", "", " a = b ", "a=b=c", "a=b!=c", "a!=b=c", "a=|", "a=b||c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := pipeline.ParseFilter(s)
		if err != nil {
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Fatalf("ParseFilter(%q) = %+v, %v", s, flt, err)
			}
			return
		}
		if flt.Field == "" || flt.Field != strings.TrimSpace(flt.Field) || len(flt.Values) == 0 {
			t.Fatalf("ParseFilter(%q) = %+v", s, flt)
		}
		if strings.HasSuffix(flt.Field, "!") {
			return // "a! =b" is field "a!": it cannot be written back unambiguously
		}
		var strs []string
		for _, v := range flt.Values {
			if str, ok := v.(string); ok {
				strs = append(strs, str)
			}
		}
		op := "="
		if strings.Contains(s, "!=") {
			op = "!="
		}
		back := flt.Field + op + strings.Join(strs, "|")
		again, err := pipeline.ParseFilter(back)
		if err != nil || again.Field != flt.Field || again.Op != flt.Op || len(again.Values) != len(flt.Values) {
			t.Fatalf("ParseFilter(%q) = %+v; written back %q = %+v, %v", s, flt, back, again, err)
		}
	})
}
