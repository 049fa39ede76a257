package pipeline_test

import (
	"slices"
	"testing"

	"github.com/tallyhq/tally/pipeline"
)

func TestRowTexts(t *testing.T) {
	t.Parallel()
	got := pipeline.RowTexts([]string{"SUBTOTAL 10.00", "TAX 0.50", "TOTAL 10.50"})
	want := []string{"<EDGE>\nSUBTOTAL 10.00\nTAX 0.50", "SUBTOTAL 10.00\nTAX 0.50\nTOTAL 10.50", "TAX 0.50\nTOTAL 10.50\n<EDGE>"}
	if !slices.Equal(got, want) {
		t.Errorf("RowTexts = %q, want %q", got, want)
	}
	if got := pipeline.RowTexts([]string{"ONLY"}); !slices.Equal(got, []string{"<EDGE>\nONLY\n<EDGE>"}) {
		t.Errorf("one row = %q", got)
	}
	if got := pipeline.RowTexts(nil); len(got) != 0 {
		t.Errorf("no rows = %q", got)
	}
}

func TestWordTexts(t *testing.T) {
	t.Parallel()
	got := pipeline.WordTexts([]string{"ORGANIC", "BANANAS", "1.99"})
	want := []string{"<EDGE> <EDGE> ORGANIC BANANAS 1.99", "<EDGE> ORGANIC BANANAS 1.99 <EDGE>", "ORGANIC BANANAS 1.99 <EDGE> <EDGE>"}
	if !slices.Equal(got, want) {
		t.Errorf("WordTexts = %q, want %q", got, want)
	}
}
