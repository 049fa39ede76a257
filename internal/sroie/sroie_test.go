package sroie_test

import (
	"path/filepath"
	"testing"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	rs, err := sroie.Load(filepath.Join(fixtures.Dir(t), "sroie"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 30 {
		t.Fatalf("loaded %d receipts, want 30", len(rs))
	}
	for _, r := range rs {
		if len(r.Lines) < 5 || r.Key.Total == "" {
			t.Errorf("%s: %d lines, total %q", r.Name, len(r.Lines), r.Key.Total)
		}
	}
}

func TestLineMatchedErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		truth, got  []string
		errs, chars int
	}{
		{[]string{"TOTAL 9.00"}, []string{"Total  9.00"}, 0, 10},
		{[]string{"TOTAL 9.00"}, []string{"T0TAL 9.00", "junk"}, 1, 10},
		{[]string{"ABC", "DEF"}, []string{"ABC"}, 3, 6},
		{[]string{"ABC"}, nil, 3, 3},
	}
	for _, tt := range tests {
		if e, c := sroie.LineMatchedErrors(tt.truth, tt.got); e != tt.errs || c != tt.chars {
			t.Errorf("LineMatchedErrors(%q, %q) = %d/%d, want %d/%d", tt.truth, tt.got, e, c, tt.errs, tt.chars)
		}
	}
	if d := sroie.EditDistance([]rune("kitten"), []rune("sitting")); d != 3 {
		t.Errorf("EditDistance = %d, want 3", d)
	}
}
