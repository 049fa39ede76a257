package knn

import (
	"math"
	"strings"
	"testing"
)

func nb(sim float64, merchant, image string, labels ...string) Neighbour {
	return Neighbour{Similarity: sim, Labels: labels, Merchant: merchant, ImageID: image}
}

func repeat(n int, x Neighbour) []Neighbour {
	out := make([]Neighbour, n)
	for i := range out {
		out[i] = x
		out[i].ImageID = x.ImageID + string(rune('a'+i))
	}
	return out
}

// ofImage is n copies of x, all of x's image.
func ofImage(n int, x Neighbour) []Neighbour {
	out := make([]Neighbour, n)
	for i := range out {
		out[i] = x
	}
	return out
}

func TestConsensus(t *testing.T) {
	t.Parallel()
	cat := func(xs ...[]Neighbour) []Neighbour {
		var out []Neighbour
		for _, x := range xs {
			out = append(out, x...)
		}
		return out
	}
	tests := []struct {
		name     string
		ns       []Neighbour
		merchant string
		want     string // "" for no consensus
	}{
		{"none", nil, "", ""},
		{"two agreeing neighbours are not enough", repeat(2, nb(0.95, "", "x", "TAX")), "", ""},
		{"three agreeing", repeat(3, nb(0.95, "", "x", "TAX")), "", "TAX"},
		{"three below the threshold", repeat(3, nb(0.79, "", "x", "TAX")), "", ""},
		{"three at the threshold", repeat(3, nb(0.8, "", "x", "TAX")), "", "TAX"},
		{"below-threshold neighbours do not vote", cat(repeat(3, nb(0.9, "", "x", "TAX")), repeat(5, nb(0.7, "", "y", "TIP"))), "", "TAX"},
		{"unlabelled neighbours do not vote", cat(repeat(3, nb(0.9, "", "x", "TAX")), repeat(5, nb(0.9, "", "y"))), "", "TAX"},
		{"tie", cat(repeat(3, nb(0.9, "", "x", "TAX")), repeat(3, nb(0.9, "", "y", "TIP"))), "", ""},
		{"tie of a neighbour's two labels", repeat(3, nb(0.9, "", "x", "TAX", "TIP")), "", ""},
		{"plurality without a majority", cat(repeat(3, nb(0.8, "", "x", "TAX")), repeat(2, nb(0.9, "", "y", "TIP")), repeat(1, nb(0.9, "", "z", "DATE"))), "", ""},
		{"majority of the weight", cat(repeat(4, nb(0.9, "", "x", "TAX")), repeat(3, nb(0.9, "", "y", "TIP"))), "", "TAX"},
		{"same merchant doubles and flips the vote", cat(repeat(4, nb(0.9, "OTHER", "x", "TAX")), repeat(3, nb(0.9, "Acme  mart", "y", "TIP"))), "ACME MART", "TIP"},
		{"no merchant, no doubling", cat(repeat(4, nb(0.9, "", "x", "TAX")), repeat(3, nb(0.9, "", "y", "TIP"))), "", "TAX"},
		{"a repeated label votes once", repeat(3, nb(0.9, "", "x", "TAX", "TAX", " ")), "", "TAX"},
		{"same image never votes", cat(ofImage(5, nb(0.99, "", "self", "TAX")), repeat(3, nb(0.9, "", "y", "TIP"))), "", "TIP"},
		{"only the same image: nothing", ofImage(5, nb(0.99, "", "self", "TAX")), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := Consensus(tt.ns, Target{ImageID: "self", Merchant: tt.merchant}, Config{})
			if got := map[bool]string{true: v.Label, false: ""}[ok]; got != tt.want {
				t.Fatalf("Consensus = %q (%+v), want %q", got, v, tt.want)
			}
		})
	}
}

func TestConsensusFigures(t *testing.T) {
	t.Parallel()
	ns := append(repeat(3, nb(0.9, "", "x", "MERCHANT_NAME")), nb(0.8, "", "y", "ADDRESS_LINE"), nb(0.5, "", "z", "DATE"))
	v, ok := Consensus(ns, Target{ImageID: "self"}, Config{})
	if !ok || v.Label != "MERCHANT_NAME" {
		t.Fatalf("Consensus = %+v, %v", v, ok)
	}
	share := 2.7 / 3.5
	if math.Abs(v.Share-share) > 1e-9 || math.Abs(v.MeanSimilarity-0.9) > 1e-9 || math.Abs(v.Confidence-share*0.9) > 1e-9 {
		t.Errorf("share %v mean %v confidence %v, want %v, 0.9, %v", v.Share, v.MeanSimilarity, v.Confidence, share, share*0.9)
	}
	if v.Agree != 3 || v.Voters != 4 {
		t.Errorf("agree %d of %d, want 3 of 4", v.Agree, v.Voters)
	}
	if got, want := v.Reasoning(0.8), "3 of 4 similar words (≥0.80) are MERCHANT_NAME"; got != want {
		t.Errorf("reasoning %q, want %q", got, want)
	}
	// The thresholds are configurable.
	if _, ok := Consensus(ns, Target{ImageID: "self"}, Config{MinVotes: 4}); ok {
		t.Error("MinVotes 4 found a consensus of 3")
	}
	if v, ok := Consensus(ns, Target{ImageID: "self"}, Config{MinSimilarity: 0.95}); ok {
		t.Errorf("MinSimilarity 0.95 found %+v", v)
	}
	// Same-merchant votes are named in the reasoning.
	ns[0].Merchant = "ACME"
	v, _ = Consensus(ns, Target{ImageID: "self", Merchant: "acme"}, Config{})
	if v.SameMerchant != 1 || !strings.Contains(v.Reasoning(0.8), "1 of the same merchant") {
		t.Errorf("same merchant %d, reasoning %q", v.SameMerchant, v.Reasoning(0.8))
	}
}

func TestParseLabels(t *testing.T) {
	t.Parallel()
	if got := ParseLabels("DATE, TIME,,DATE"); strings.Join(got, "|") != "DATE|TIME" {
		t.Errorf("ParseLabels = %q", got)
	}
	if got := ParseLabels(" "); got != nil {
		t.Errorf("ParseLabels(blank) = %q", got)
	}
}

func TestKind(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]string{"12.50": KindAmount, "RM12.50": KindAmount, "(2.00)": KindAmount, "1,234.50": KindAmount,
		"TOTAL": KindLetters, "Total:": KindLetters, "&": KindLetters, "25/12/2018": KindNumber, "10:30": KindNumber, "3": KindNumber,
		"NO.12,": KindMixed, "12JAN": KindMixed} {
		if got := Kind(text); got != want {
			t.Errorf("Kind(%q) = %s, want %s", text, got, want)
		}
	}
}

func TestConsensusSameKind(t *testing.T) {
	t.Parallel()
	ns := repeat(3, nb(0.95, "", "x", "GRAND_TOTAL"))
	for i := range ns {
		ns[i].Text = "12.50"
	}
	if _, ok := Consensus(ns, Target{Text: "TOTAL"}, Config{SameKind: true}); ok {
		t.Error("amounts voted for a keyword with SameKind")
	}
	if _, ok := Consensus(ns, Target{Text: "TOTAL"}, Config{}); !ok {
		t.Error("without SameKind the amounts do not vote")
	}
	if v, ok := Consensus(ns, Target{Text: "9.90"}, Config{SameKind: true}); !ok || v.Label != "GRAND_TOTAL" {
		t.Error("amounts did not vote for an amount")
	}
}
