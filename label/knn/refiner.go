package knn

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/money"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/extract"
	"github.com/tallyhq/tally/pipeline"
)

// Refiner labels the words a proposal left without a label by the
// consensus of their nearest labelled neighbours, and fills the
// receipt-level fields the proposal did not find from those labels. It
// never changes or removes what the proposal holds.
type Refiner struct {
	emb embed.Embedder
	idx Index
	cfg Config
}

var _ label.Refiner = (*Refiner)(nil)

// New returns a Refiner that embeds words with e — the embedder the
// process stage used for the "words" collection, or the vectors are not
// comparable — and looks neighbours up in idx.
func New(e embed.Embedder, idx Index, cfg Config) (*Refiner, error) {
	if e == nil || idx == nil {
		return nil, fmt.Errorf("knn refiner: an embedder and an index are required: %w", tally.ErrInvalidArgument)
	}
	return &Refiner{emb: e, idx: idx, cfg: cfg.withDefaults()}, nil
}

// Config is the consensus rule in use, defaults filled in.
func (rf *Refiner) Config() Config { return rf.cfg }

// Refine returns a copy of p with a kNN label on each word p leaves
// unlabelled where the neighbours agree, and each receipt-level field p
// lacks filled from those labels. Its Source is p's plus "+knn".
func (rf *Refiner) Refine(ctx context.Context, r label.Receipt, p label.Proposal) (label.Proposal, error) {
	labelled := map[entities.WordRef]bool{}
	for _, l := range p.Labels {
		labelled[l.Word] = true
	}
	var todo []entities.WordRef
	for _, w := range r.Words {
		if ref := (entities.WordRef{w.LineID, w.WordID}); !labelled[ref] {
			todo = append(todo, ref)
		}
	}
	lay := layoutOf(r)
	added, err := rf.suggest(ctx, r, p, todo, lay)
	if err != nil {
		return label.Proposal{}, err
	}
	out := cloneProposal(p)
	out.Labels = append(out.Labels, added...)
	fillFields(r, &out, added, lay)
	out.Source = p.Source + "+" + label.SourceKNN
	return out, nil
}

// Suggest returns the consensus label of each of words (the receipt's
// word references) that has one, whatever p already says about them; p
// only supplies the merchant whose neighbours count double. All the words
// are embedded in one call, each as pipeline.WordTexts embeds it in its
// row (two words of context either side).
func (rf *Refiner) Suggest(ctx context.Context, r label.Receipt, p label.Proposal, words []entities.WordRef) ([]label.WordLabel, error) {
	return rf.suggest(ctx, r, p, words, layoutOf(r))
}

func (rf *Refiner) suggest(ctx context.Context, r label.Receipt, p label.Proposal, words []entities.WordRef, lay layout) ([]label.WordLabel, error) {
	if len(words) == 0 {
		return nil, nil
	}
	texts := make([]string, len(words))
	for i, ref := range words {
		t, ok := lay.text[ref]
		if !ok {
			return nil, fmt.Errorf("knn: receipt %d: %w [%d, %d]", r.ReceiptID, label.ErrUnknownWord, ref[0], ref[1])
		}
		texts[i] = t
	}
	vecs, err := rf.emb.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("knn: embed %d words of receipt %d: %w", len(texts), r.ReceiptID, err)
	}
	if len(vecs) != len(texts) {
		return nil, fmt.Errorf("knn: embedder returned %d vectors for %d words", len(vecs), len(texts))
	}
	merchant := merchantOf(p)
	var out []label.WordLabel
	for i, ref := range words {
		ns, err := rf.idx.Neighbours(ctx, vecs[i], rf.cfg.K, r.ImageID)
		if err != nil {
			return nil, fmt.Errorf("knn: neighbours of word [%d, %d] of receipt %d: %w", ref[0], ref[1], r.ReceiptID, err)
		}
		w, _ := r.Word(ref)
		v, ok := Consensus(canonical(ns), Target{ImageID: r.ImageID, Merchant: merchant, Text: w.Text}, rf.cfg)
		if !ok {
			continue
		}
		out = append(out, label.WordLabel{Word: ref, Label: v.Label, Confidence: v.Confidence,
			Reasoning: v.Reasoning(rf.cfg.MinSimilarity), Source: label.SourceKNN})
	}
	return out, nil
}

// canonical rewrites the neighbours' labels to their canonical names, so
// that an alias votes with its label, and drops the labels this version
// does not know.
func canonical(ns []Neighbour) []Neighbour {
	out := make([]Neighbour, len(ns))
	for i, n := range ns {
		ls := make([]string, 0, len(n.Labels))
		for _, l := range n.Labels {
			if c, err := label.Canonical(l); err == nil {
				ls = append(ls, c)
			}
		}
		n.Labels = ls
		out[i] = n
	}
	return out
}

// merchantOf is the proposal's merchant name as printed.
func merchantOf(p label.Proposal) string {
	f := p.Fields[label.MerchantName]
	if strings.TrimSpace(f.Text) != "" {
		return f.Text
	}
	return f.Value
}

// layout is a receipt's words as embedded and in reading order.
type layout struct {
	text  map[entities.WordRef]string
	order map[entities.WordRef]int
}

// layoutOf embeds each word in its visual row as the process stage does;
// a word no row holds gets its line as context.
func layoutOf(r label.Receipt) layout {
	lay := layout{text: map[entities.WordRef]string{}, order: map[entities.WordRef]int{}}
	add := func(ws []entities.ReceiptWord) {
		texts := make([]string, len(ws))
		for i, w := range ws {
			texts[i] = w.Text
		}
		for i, t := range pipeline.WordTexts(texts) {
			ref := entities.WordRef{ws[i].LineID, ws[i].WordID}
			if _, ok := lay.text[ref]; !ok {
				lay.text[ref], lay.order[ref] = t, len(lay.order)
			}
		}
	}
	for _, row := range r.Rows {
		add(r.RowWords(row))
	}
	byLine := map[int][]entities.ReceiptWord{}
	var lines []int
	for _, w := range r.Words {
		if _, ok := lay.text[entities.WordRef{w.LineID, w.WordID}]; ok {
			continue
		}
		if _, ok := byLine[w.LineID]; !ok {
			lines = append(lines, w.LineID)
		}
		byLine[w.LineID] = append(byLine[w.LineID], w)
	}
	sort.Ints(lines)
	for _, id := range lines {
		ws := byLine[id]
		sort.SliceStable(ws, func(i, j int) bool { return ws[i].WordID < ws[j].WordID })
		add(ws)
	}
	return lay
}

// hasField tells whether the proposal found a field.
func hasField(f entities.SummaryField, ok bool) bool {
	return ok && (strings.TrimSpace(f.Text) != "" || strings.TrimSpace(f.Value) != "" || len(f.Words) > 0)
}

// fillFields sets each receipt-level field p lacks from the kNN labels of
// that name: its words in reading order, its value normalized as the
// rules normalize it (an amount as a decimal, a date only from a word the
// OCR stage read as one, a phone as E.164 when it can be).
func fillFields(r label.Receipt, p *label.Proposal, added []label.WordLabel, lay layout) {
	if len(added) == 0 {
		return
	}
	byLabel := map[string][]label.WordLabel{}
	for _, l := range added {
		byLabel[l.Label] = append(byLabel[l.Label], l)
	}
	if p.Fields == nil {
		p.Fields = map[string]entities.SummaryField{}
	}
	for _, name := range label.RequiredFields {
		ls := byLabel[name]
		if f, ok := p.Fields[name]; len(ls) == 0 || hasField(f, ok) {
			continue
		}
		sort.SliceStable(ls, func(i, j int) bool { return lay.order[ls[i].Word] < lay.order[ls[j].Word] })
		if f, ok := fieldFrom(r, name, ls); ok {
			p.Fields[name] = f
		}
	}
}

// fieldFrom builds one field from its labelled words (in reading order).
func fieldFrom(r label.Receipt, name string, ls []label.WordLabel) (entities.SummaryField, bool) {
	words := func(ls []label.WordLabel) ([]entities.ReceiptWord, float64) {
		var ws []entities.ReceiptWord
		conf := 0.0
		for _, l := range ls {
			if w, ok := r.Word(l.Word); ok {
				ws = append(ws, w)
				conf += l.Confidence
			}
		}
		if len(ws) > 0 {
			conf /= float64(len(ws))
		}
		return ws, conf
	}
	field := func(ws []entities.ReceiptWord, value string, conf float64) (entities.SummaryField, bool) {
		if len(ws) == 0 {
			return entities.SummaryField{}, false
		}
		f := entities.SummaryField{Value: value, Confidence: conf, Source: label.SourceKNN}
		texts := make([]string, len(ws))
		for i, w := range ws {
			texts[i] = w.Text
			f.Words = append(f.Words, entities.WordRef{w.LineID, w.WordID})
		}
		f.Text = strings.Join(texts, " ")
		if f.Value == "" {
			f.Value = f.Text
		}
		return f, true
	}
	switch {
	case label.AmountFields[name]:
		// One amount: the most confident labelled word that reads as one.
		best, bestConf := -1, -1.0
		var value string
		for i, l := range ls {
			w, ok := r.Word(l.Word)
			if !ok {
				continue
			}
			a, err := money.Parse(w.Text)
			if err == nil && l.Confidence > bestConf {
				best, bestConf, value = i, l.Confidence, a.Fixed(2)
			}
		}
		if best < 0 {
			return entities.SummaryField{}, false
		}
		ws, conf := words(ls[best : best+1])
		return field(ws, value, conf)
	case name == label.Date:
		// Only a date the OCR stage read, as the rules take it.
		var dated []label.WordLabel
		value := ""
		for _, l := range ls {
			w, ok := r.Word(l.Word)
			if !ok || w.ExtractedData == nil || w.ExtractedData.Type != ocr.ExtractDate {
				continue
			}
			iso := w.ExtractedData.Value
			if len(iso) >= 10 {
				iso = iso[:10]
			}
			if _, err := time.Parse(time.DateOnly, iso); err != nil || (value != "" && iso != value) {
				continue
			}
			value = iso
			dated = append(dated, l)
		}
		ws, conf := words(dated)
		return field(ws, value, conf)
	case name == label.PhoneNumber:
		ws, conf := words(ls)
		value := ""
		for _, w := range ws {
			if e := w.ExtractedData; e != nil && e.Type == ocr.ExtractPhone {
				value = e.Value
				if e164, ok := extract.NormalizePhone(value); ok {
					value = e164
				}
				break
			}
		}
		return field(ws, value, conf)
	default:
		ws, conf := words(ls)
		return field(ws, "", conf)
	}
}

// cloneProposal copies p so that refining never changes the caller's.
func cloneProposal(p label.Proposal) label.Proposal {
	out := p
	out.Labels = slices.Clone(p.Labels)
	out.Fields = maps.Clone(p.Fields)
	if out.Fields == nil {
		out.Fields = map[string]entities.SummaryField{}
	}
	for k, f := range out.Fields {
		f.Words = slices.Clone(f.Words)
		out.Fields[k] = f
	}
	out.Items = slices.Clone(p.Items)
	out.Doubts = slices.Clone(p.Doubts)
	return out
}
