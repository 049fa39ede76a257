// Package knn is the old system's nearest-neighbour label consensus: a word
// the labeller left without a label takes the label its most similar
// previously labelled words agree on. Words of the same merchant recur
// (the header, the tender rows, the total's wording), so a label a person
// or a VALID summary gave one receipt can carry over to the next receipt of
// that merchant without a rule for it.
//
// The consensus is deliberately conservative: at least MinVotes neighbours
// with cosine similarity ≥ MinSimilarity must agree, votes are weighted by
// similarity (a neighbour of the same merchant counts SameMerchantWeight
// times), the winner needs more than half of the weighted vote, and a
// neighbour from the receipt's own image never votes. A Refiner applies it
// to a proposal (label.Refiner); Memory is an exact in-memory index for
// tests and measurements, VectorIndex the adapter over the vector store's
// "words" collection, whose records carry their VALID labels in the
// "label" metadata field.
package knn

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// Neighbour is one previously labelled word near the word being labelled.
type Neighbour struct {
	// Similarity is the cosine similarity of the two words' embeddings.
	Similarity float64
	// Labels are the neighbour's VALID labels.
	Labels []string
	// Merchant is the neighbour's receipt's merchant name ("" unknown).
	Merchant string
	// ImageID is the neighbour's image, so that a receipt never votes
	// for its own words.
	ImageID string
	// ID and Text identify the neighbour for debugging; optional.
	ID, Text string
}

// Index finds labelled words near a vector. Implementations return only
// words that carry at least one label, best first, none from the image
// excludeImage (when not ""), at most k.
type Index interface {
	Neighbours(ctx context.Context, vector []float32, k int, excludeImage string) ([]Neighbour, error)
}

// Config tunes the consensus. The zero value means the old system's rule.
type Config struct {
	// K is how many neighbours are asked for per word; default 10.
	K int
	// MinSimilarity is the cosine similarity a neighbour needs to vote;
	// default 0.8.
	MinSimilarity float64
	// MinVotes is how many voting neighbours must carry the winning
	// label; default 3.
	MinVotes int
	// SameMerchantWeight multiplies the vote of a neighbour from the
	// receipt's merchant; default 2.
	SameMerchantWeight float64
	// SameKind, when set, lets a neighbour vote only when its own word is
	// of the word's kind (an amount, a number, letters, or letters and
	// digits; see Kind). A word is embedded with two words of context
	// either side, and the offline hashed embedder ignores word order,
	// so every word of a row of three words or fewer embeds the same:
	// "TOTAL" in "TOTAL RM 12.50" is as near the GRAND_TOTAL amounts of
	// earlier receipts as "12.50" is. Off by default (the old system's
	// rule, which had an embedder that saw order).
	SameKind bool
}

// Defaults of Config.
const (
	DefaultK                  = 10
	DefaultMinSimilarity      = 0.8
	DefaultMinVotes           = 3
	DefaultSameMerchantWeight = 2
)

func (c Config) withDefaults() Config {
	if c.K <= 0 {
		c.K = DefaultK
	}
	if c.MinSimilarity <= 0 {
		c.MinSimilarity = DefaultMinSimilarity
	}
	if c.MinVotes <= 0 {
		c.MinVotes = DefaultMinVotes
	}
	if c.SameMerchantWeight <= 0 {
		c.SameMerchantWeight = DefaultSameMerchantWeight
	}
	return c
}

// Verdict is what the neighbours of one word agreed on.
type Verdict struct {
	Label string
	// Share is the winner's part of the weighted vote (0.5 < Share ≤ 1).
	Share float64
	// MeanSimilarity is the mean similarity of the neighbours that voted
	// for the winner.
	MeanSimilarity float64
	// Confidence is Share × MeanSimilarity.
	Confidence float64
	// Agree is how many voting neighbours carry the winner, Voters how
	// many voted at all, SameMerchant how many of Agree are of the
	// receipt's merchant.
	Agree, Voters, SameMerchant int
}

// Reasoning says why in a line, for the label row a reviewer reads.
func (v Verdict) Reasoning(minSimilarity float64) string {
	s := fmt.Sprintf("%d of %d similar words (≥%.2f) are %s", v.Agree, v.Voters, minSimilarity, v.Label)
	if v.SameMerchant > 0 {
		s += fmt.Sprintf(" (%d of the same merchant)", v.SameMerchant)
	}
	return s
}

// Target is the word whose neighbours vote.
type Target struct {
	// ImageID is the word's image: its words never vote.
	ImageID string
	// Merchant is its receipt's merchant name as the proposal read it;
	// "" when unknown.
	Merchant string
	// Text is the word as printed, for Config.SameKind.
	Text string
}

// Consensus applies the rule to one word's neighbours: only neighbours
// with labels, of another image than the target's and at least
// MinSimilarity vote (and, with SameKind, only those of the word's kind);
// each votes its similarity (times SameMerchantWeight when its merchant is
// the target's, compared case-insensitively) for each of its labels; the
// winner needs MinVotes agreeing neighbours, more than half of the
// weighted vote and no tie. ok is false when there is no winner.
func Consensus(ns []Neighbour, t Target, cfg Config) (v Verdict, ok bool) {
	cfg = cfg.withDefaults()
	merchant, imageID := foldName(t.Merchant), t.ImageID
	kind := Kind(t.Text)
	type tally struct {
		weight, sim float64
		n, same     int
	}
	votes := map[string]*tally{}
	var total float64
	voters := 0
	for _, n := range ns {
		if n.Similarity < cfg.MinSimilarity || (imageID != "" && n.ImageID == imageID) {
			continue
		}
		if cfg.SameKind && n.Text != "" && Kind(n.Text) != kind {
			continue
		}
		labels := uniqueLabels(n.Labels)
		if len(labels) == 0 {
			continue
		}
		w, same := n.Similarity, merchant != "" && foldName(n.Merchant) == merchant
		if same {
			w *= cfg.SameMerchantWeight
		}
		total += w
		voters++
		for _, l := range labels {
			t := votes[l]
			if t == nil {
				t = &tally{}
				votes[l] = t
			}
			t.weight += w
			t.sim += n.Similarity
			t.n++
			if same {
				t.same++
			}
		}
	}
	if voters == 0 {
		return Verdict{}, false
	}
	names := make([]string, 0, len(votes))
	for l := range votes {
		names = append(names, l)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := votes[names[i]], votes[names[j]]
		if a.weight != b.weight {
			return a.weight > b.weight
		}
		return names[i] < names[j]
	})
	best := votes[names[0]]
	if len(names) > 1 && votes[names[1]].weight == best.weight {
		return Verdict{}, false // a tie is no consensus
	}
	share := best.weight / total
	if best.n < cfg.MinVotes || share <= 0.5 {
		return Verdict{}, false
	}
	v = Verdict{Label: names[0], Share: min(share, 1), MeanSimilarity: min(best.sim/float64(best.n), 1),
		Agree: best.n, Voters: voters, SameMerchant: best.same}
	v.Confidence = v.Share * v.MeanSimilarity
	return v, true
}

// Word kinds (see Kind).
const (
	KindAmount  = "amount"
	KindNumber  = "number"
	KindLetters = "letters"
	KindMixed   = "mixed"
)

// reAmountWord is a printed amount with two decimals (the rules' shape):
// 9.00, 1,234.50, RM9.00, $3.99, -3.10, 5.00-, (2.00).
var reAmountWord = regexp.MustCompile(`^\(?[-+]?(?:RM|\$|USD|MYR|US\$)?[-+]?(?:\d{1,3}(?:[,.' ]\d{3})+|\d*)[.,]\d{2}\)?-?$`)

// Kind is a word's coarse shape: an amount with two decimals, another
// number (digits and punctuation: dates, times, phone numbers, counts),
// letters (no digits), or letters and digits mixed; punctuation alone is
// letters.
func Kind(text string) string {
	t := strings.Trim(strings.ToUpper(strings.TrimSpace(text)), ":")
	if reAmountWord.MatchString(t) {
		return KindAmount
	}
	letters, digits := false, false
	for _, r := range t {
		switch {
		case unicode.IsLetter(r):
			letters = true
		case unicode.IsDigit(r):
			digits = true
		}
	}
	switch {
	case digits && letters:
		return KindMixed
	case digits:
		return KindNumber
	}
	return KindLetters
}

// foldName is a merchant name as compared: upper-cased, white space
// collapsed.
func foldName(s string) string { return strings.ToUpper(strings.Join(strings.Fields(s), " ")) }

// uniqueLabels drops blank and repeated labels, so that a neighbour votes
// at most once for each.
func uniqueLabels(ls []string) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		dup := false
		for _, o := range out {
			if o == l {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, l)
		}
	}
	return out
}

// ParseLabels reads the "label" metadata of a word record: VALID labels
// joined by ",".
func ParseLabels(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return uniqueLabels(strings.Split(s, ","))
}
