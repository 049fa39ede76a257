package knn

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/embed/hashed"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/labeltest"
	"github.com/tallyhq/tally/label/rules"
	"github.com/tallyhq/tally/pipeline"
)

func transcriptReceipt(tb testing.TB, r sroie.Receipt) label.Receipt {
	return labeltest.SROIEReceipt(tb, r)
}

func sroieFields(s entities.ReceiptSummary) sroie.Fields { return labeltest.SROIEFields(s) }

// keyFields maps the SROIE fields to the labels they are read from.
var keyFields = []struct{ name, label string }{{sroie.FieldCompany, label.MerchantName},
	{sroie.FieldAddress, label.AddressLine}, {sroie.FieldDate, label.Date}, {sroie.FieldTotal, label.GrandTotal}}

func verdictOf(s sroie.FieldScore, field string) sroie.FieldVerdict {
	switch field {
	case sroie.FieldCompany:
		return s.Company
	case sroie.FieldAddress:
		return s.Address
	case sroie.FieldDate:
		return s.Date
	}
	return s.Total
}

// defaultDims is the dimension count of the app's default embedder.
func defaultDims(tb testing.TB) int {
	u, err := url.Parse(config.DefaultEmbedderURL)
	if err != nil || u.Scheme != "hashed" {
		tb.Fatalf("default embedder %q is not the hashed one", config.DefaultEmbedderURL)
	}
	n, err := strconv.Atoi(u.Host)
	if err != nil {
		tb.Fatalf("default embedder %q: %v", config.DefaultEmbedderURL, err)
	}
	return n
}

// guardedIndex fails the test when an index answers with a word of the
// image it was told to exclude: the stream must never let a receipt vote
// for itself.
type guardedIndex struct {
	tb      testing.TB
	x       Index
	queries int
}

func (g *guardedIndex) Neighbours(ctx context.Context, v []float32, k int, exclude string) ([]Neighbour, error) {
	g.queries++
	ns, err := g.x.Neighbours(ctx, v, k, exclude)
	for _, n := range ns {
		if n.ImageID == exclude {
			g.tb.Errorf("index returned a neighbour of the excluded image %s", exclude)
		}
	}
	return ns, err
}

// ruled is one receipt with the rules' proposal and its score, computed
// once for every variant.
type ruled struct {
	sr    sroie.Receipt
	in    label.Receipt
	p     label.Proposal
	u     entities.Understanding
	score sroie.FieldScore
}

func ruleAll(t *testing.T, rs []sroie.Receipt) ([]ruled, sroie.FieldTally) {
	ctx := context.Background()
	rl := rules.New()
	var tally sroie.FieldTally
	out := make([]ruled, len(rs))
	for i, sr := range rs {
		in := transcriptReceipt(t, sr)
		p, err := rl.Label(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if err := label.Validate(in, &p); err != nil {
			t.Fatalf("%s: rules proposal invalid: %v", sr.Name, err)
		}
		u := label.Summarize(in, p, time.Unix(0, 0))
		out[i] = ruled{sr: sr, in: in, p: p, u: u, score: sroie.ScoreFields(sr.Key, sroieFields(u.Summary))}
		tally.Add(sr.Name, out[i].score)
	}
	return out, tally
}

// streamResult is one pass over the receipts.
type streamResult struct {
	knn sroie.FieldTally
	// fills[field] counts key fields kNN filled; right* those correct.
	fills, rightStrict, rightNorm map[string]int
	fillLog                       []string
	// otherFills counts the other receipt-level fields kNN filled.
	otherFills map[string]int
	// added counts kNN labels on words the rules left unlabelled, by
	// label; kindMismatch those whose word's kind differs from what the
	// label holds (an amount label on a word that is no amount).
	added, kindMismatch map[string]int
	// shortRow counts kNN labels on words of rows of three words or
	// fewer, whose words all embed alike under the hashed embedder.
	shortRow int
	// agreement: on VALID receipts, kNN asked about every word the rules
	// labelled.
	asked, answered, agreed int
	disagree                map[string]int // "rules→knn"
	validRules, validKNN    int
	indexed, queries        int
	elapsed                 time.Duration
}

// amountLabels are the labels whose words are amounts.
var amountLabels = map[string]bool{label.Subtotal: true, label.Tax: true, label.Tip: true, label.GrandTotal: true,
	label.LineTotal: true, label.UnitPrice: true, label.Change: true, label.CashBack: true, label.Refund: true}

// streamSROIE labels the receipts in name order as a stream: the rules'
// proposal refined against the VALID labels of every earlier receipt, and
// scored; then the receipt's VALID labels join the index — from the
// refined summary as the process stage would store them (feedRefined), or
// from the rules' alone, which keeps kNN's own labels out of its votes.
func streamSROIE(t *testing.T, rs []ruled, dims int, cfg Config, feedRefined bool) streamResult {
	ctx := context.Background()
	start := time.Now()
	emb, err := hashed.New(dims)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := NewMemory(dims)
	if err != nil {
		t.Fatal(err)
	}
	idx := &guardedIndex{tb: t, x: mem}
	rf, err := New(emb, idx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := streamResult{fills: map[string]int{}, rightStrict: map[string]int{}, rightNorm: map[string]int{},
		otherFills: map[string]int{}, added: map[string]int{}, kindMismatch: map[string]int{}, disagree: map[string]int{}}
	at := time.Unix(0, 0)
	for _, rc := range rs {
		sr, in, p, ur := rc.sr, rc.in, rc.p, rc.u
		lay := layoutOf(in)
		refined, err := rf.Refine(ctx, in, p)
		if err != nil {
			t.Fatalf("%s: refine: %v", sr.Name, err)
		}
		if err := label.Validate(in, &refined); err != nil {
			t.Fatalf("%s: refined proposal invalid: %v", sr.Name, err)
		}
		// By construction: the rules' labels and found fields stand.
		if !reflect.DeepEqual(refined.Labels[:len(p.Labels)], p.Labels) {
			t.Fatalf("%s: kNN changed the rules' labels", sr.Name)
		}
		for k, f := range p.Fields {
			if hasField(f, true) && !reflect.DeepEqual(refined.Fields[k], f) {
				t.Fatalf("%s: kNN overrode the rules' %s %+v with %+v", sr.Name, k, f, refined.Fields[k])
			}
		}
		uk := label.Summarize(in, refined, at)
		knnScore := sroie.ScoreFields(sr.Key, sroieFields(uk.Summary))
		res.knn.Add(sr.Name, knnScore)
		for _, kf := range keyFields {
			if f, ok := p.Fields[kf.label]; hasField(f, ok) {
				continue
			}
			if f := refined.Fields[kf.label]; f.Source == label.SourceKNN {
				res.fills[kf.name]++
				res.fillLog = append(res.fillLog, fmt.Sprintf("%s %s: got %q (%q), key %+v", sr.Name, kf.name, f.Text, f.Value, sr.Key))
				v := verdictOf(knnScore, kf.name)
				if v.Strict.Correct {
					res.rightStrict[kf.name]++
				}
				if v.Normalized.Correct {
					res.rightNorm[kf.name]++
				}
			}
		}
		for _, name := range label.RequiredFields {
			if f, ok := p.Fields[name]; !hasField(f, ok) && refined.Fields[name].Source == label.SourceKNN &&
				name != label.MerchantName && name != label.AddressLine && name != label.Date && name != label.GrandTotal {
				res.otherFills[name]++
			}
		}
		for _, l := range refined.Labels[len(p.Labels):] {
			res.added[l.Label]++
			w, _ := in.Word(l.Word)
			if strings.Count(lay.text[l.Word], pipeline.Edge) >= 2 {
				res.shortRow++
			}
			if amountLabels[l.Label] != (Kind(w.Text) == KindAmount) {
				res.kindMismatch[l.Label]++
			}
		}
		if ur.Summary.Status == entities.SummaryValid {
			res.validRules++
			// The variant that labels every word: what kNN says about the
			// words the rules labelled on a VALID receipt.
			byWord := map[entities.WordRef][]string{}
			var refs []entities.WordRef
			for _, l := range p.Labels {
				if _, ok := byWord[l.Word]; !ok {
					refs = append(refs, l.Word)
				}
				byWord[l.Word] = append(byWord[l.Word], l.Label)
			}
			sug, err := rf.Suggest(ctx, in, p, refs)
			if err != nil {
				t.Fatal(err)
			}
			res.asked += len(refs)
			res.answered += len(sug)
			for _, s := range sug {
				if contains(byWord[s.Word], s.Label) {
					res.agreed++
				} else {
					res.disagree[strings.Join(byWord[s.Word], ",")+"→"+s.Label]++
				}
			}
		}
		if uk.Summary.Status == entities.SummaryValid {
			res.validKNN++
		}
		feed := ur
		if feedRefined {
			feed = uk
		}
		n, err := addValid(ctx, mem, emb, in, feed)
		if err != nil {
			t.Fatal(err)
		}
		res.indexed += n
	}
	res.queries = idx.queries
	res.elapsed = time.Since(start)
	return res
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// addValid puts a receipt's VALID labels into the index as the process
// stage puts them into the "words" records: each labelled word embedded
// in its row, with its labels, its image and the summary's merchant.
func addValid(ctx context.Context, m *Memory, emb *hashed.Embedder, r label.Receipt, u entities.Understanding) (int, error) {
	byWord := map[entities.WordRef][]string{}
	var refs []entities.WordRef
	for _, l := range u.Labels {
		if l.ValidationStatus != entities.LabelValid {
			continue
		}
		ref := entities.WordRef{l.LineID, l.WordID}
		if _, ok := byWord[ref]; !ok {
			refs = append(refs, ref)
		}
		byWord[ref] = append(byWord[ref], l.Label)
	}
	if len(refs) == 0 {
		return 0, nil
	}
	lay := layoutOf(r)
	texts := make([]string, len(refs))
	for i, ref := range refs {
		texts[i] = lay.text[ref]
	}
	vs, err := emb.Embed(ctx, texts)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, ref := range refs {
		w, _ := r.Word(ref)
		ok, err := m.Add(vs[i], Neighbour{Labels: byWord[ref], Merchant: u.Summary.MerchantName, ImageID: r.ImageID, Text: w.Text})
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func countsLine(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || (m[keys[i]] == m[keys[j]] && keys[i] < keys[j]) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// TestKNNConsensusSROIE measures the kNN consensus on the ground-truth
// transcripts of the SROIE receipts in the fixtures (never 100–199): the
// key fields' F1 with the rules alone and with the rules refined by kNN,
// how many fields kNN filled and how many of those are right, and how
// often kNN agrees with the rules on the words the rules labelled on VALID
// receipts. It asserts only what holds by construction (kNN never
// overrides the rules, no receipt votes for itself, every receipt is
// scored) and logs the numbers. TALLY_KNN_FILLS=1 lists the fills.
//
// In `make test` it streams the first 120 receipts with the pipeline's
// variant only (the full run takes minutes under -race);
// TALLY_KNN_EVAL=1 streams all 526 with every variant, as BENCHMARKS.md
// reports.
func TestKNNConsensusSROIE(t *testing.T) {
	dir := fixtures.Path(t, "sroie")
	rs, err := sroie.LoadTranscripts(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if sroie.Reserved(r.Name) {
			t.Fatalf("reserved receipt %s loaded", r.Name)
		}
	}
	full := os.Getenv("TALLY_KNN_EVAL") != ""
	if !full && len(rs) > 120 {
		rs = rs[:120]
	}
	dims := defaultDims(t)
	pre, rulesTally := ruleAll(t, rs)
	st, nt := rulesTally.F1()
	emb, err := hashed.New(dims)
	if err != nil {
		t.Fatal(err)
	}
	probe := pipeline.WordTexts([]string{"TOTAL"})[0]
	other := pipeline.WordTexts([]string{"03-77855010"})[0]
	pv, _ := emb.Embed(context.Background(), []string{probe, other})
	t.Logf("\n%d receipts, hashed embedder at %d dims (cosine of %q and %q: %.2f)\n\nrules only: strict F1 %.1f, normalized F1 %.1f\n%s",
		len(rs), dims, probe, other, cosine(pv[0], pv[1]), 100*st, 100*nt, rulesTally.Table())
	variants := []struct {
		name        string
		cfg         Config
		feedRefined bool
	}{
		{"old rule, index fed the refined labels (as the pipeline would)", Config{}, true},
		{"old rule, index fed the rules' labels only", Config{}, false},
		{"old rule + same word kind, index fed the refined labels", Config{SameKind: true}, true},
		{"old rule + same word kind, index fed the rules' labels only", Config{SameKind: true}, false},
	}
	if !full {
		variants = variants[:1]
	}
	t.Run("variants", func(t *testing.T) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				res := streamSROIE(t, pre, dims, v.cfg, v.feedRefined)
				if res.knn.Receipts != len(rs) {
					t.Fatalf("scored %d of %d receipts", res.knn.Receipts, len(rs))
				}
				t.Log("\n" + report(v.name, res, len(rs)))
			})
		}
	})
}

// report is one variant's numbers.
func report(name string, res streamResult, receipts int) string {
	var b strings.Builder
	s, n := res.knn.F1()
	fmt.Fprintf(&b, "rules + kNN, %s: strict F1 %.1f, normalized F1 %.1f\n%s\n", name, 100*s, 100*n, res.knn.Table())
	b.WriteString("key fields kNN filled (the rules had none): filled / strict right / normalized right\n")
	for _, kf := range keyFields {
		fmt.Fprintf(&b, "  %s: %d / %d / %d\n", kf.name, res.fills[kf.name], res.rightStrict[kf.name], res.rightNorm[kf.name])
	}
	if os.Getenv("TALLY_KNN_FILLS") != "" {
		for _, l := range res.fillLog {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	fmt.Fprintf(&b, "other fields filled: %s\n", countsLine(res.otherFills))
	total, mismatch := 0, 0
	for l, c := range res.added {
		total += c
		mismatch += res.kindMismatch[l]
	}
	fmt.Fprintf(&b, "kNN labels on words the rules left unlabelled: %d (%s)\n", total, countsLine(res.added))
	fmt.Fprintf(&b, "  on words of rows of ≤3 words (all embed alike): %d\n", res.shortRow)
	fmt.Fprintf(&b, "  whose word's kind does not fit the label (an amount label on a non-amount or the reverse): %d (%s)\n", mismatch, countsLine(res.kindMismatch))
	fmt.Fprintf(&b, "agreement on VALID receipts (%d of %d by the rules; %d with kNN): kNN labelled %d of the %d rules-labelled words; %d agree (%.1f%%)\n",
		res.validRules, receipts, res.validKNN, res.answered, res.asked, res.agreed, 100*float64(res.agreed)/float64(max(1, res.answered)))
	fmt.Fprintf(&b, "  disagreements (rules→kNN): %s\n", countsLine(res.disagree))
	fmt.Fprintf(&b, "index: %d labelled words at the end; %d neighbour queries; %v\n", res.indexed, res.queries, res.elapsed.Round(time.Millisecond))
	return b.String()
}
