package process_test

import (
	"slices"
	"testing"

	"github.com/tallyhq/tally/process"
)

func TestRowTexts(t *testing.T) {
	t.Parallel()
	got := process.RowTexts([]string{"SUBTOTAL 10.00", "TAX 0.50", "TOTAL 10.50"})
	want := []string{"<EDGE>\nSUBTOTAL 10.00\nTAX 0.50", "SUBTOTAL 10.00\nTAX 0.50\nTOTAL 10.50", "TAX 0.50\nTOTAL 10.50\n<EDGE>"}
	if !slices.Equal(got, want) {
		t.Errorf("RowTexts = %q, want %q", got, want)
	}
	if got := process.RowTexts([]string{"ONLY"}); !slices.Equal(got, []string{"<EDGE>\nONLY\n<EDGE>"}) {
		t.Errorf("one row = %q", got)
	}
	if got := process.RowTexts(nil); len(got) != 0 {
		t.Errorf("no rows = %q", got)
	}
}

func TestWordTexts(t *testing.T) {
	t.Parallel()
	got := process.WordTexts([]string{"ORGANIC", "BANANAS", "1.99"})
	want := []string{"<EDGE> <EDGE> ORGANIC BANANAS 1.99", "<EDGE> ORGANIC BANANAS 1.99 <EDGE>", "ORGANIC BANANAS 1.99 <EDGE> <EDGE>"}
	if !slices.Equal(got, want) {
		t.Errorf("WordTexts = %q, want %q", got, want)
	}
}
