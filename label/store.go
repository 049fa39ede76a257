package label

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
)

// ErrInvalidCorrection marks a correction that names an unknown field or
// label, a word the receipt lacks, or a value of the wrong form.
var ErrInvalidCorrection = errors.New("label: invalid correction")

// Apply stores a labeller's proposal for a receipt on top of what is
// stored: fields and labels a person set win over the proposal, labels a
// person rejected are not proposed again, and the rejected rows stay as
// history. It returns what it stored. Applying the same proposal twice
// writes the same items.
func Apply(ctx context.Context, t items.Table, r Receipt, p Proposal, at time.Time, runID string) (entities.Understanding, error) {
	prev, err := load(ctx, t, r)
	if err != nil {
		return entities.Understanding{}, err
	}
	return applyOver(ctx, t, r, p, at, runID, prev)
}

// applyOver is Apply over what the caller already read as stored.
func applyOver(ctx context.Context, t items.Table, r Receipt, p Proposal, at time.Time, runID string, prev entities.Understanding) (entities.Understanding, error) {
	p = keepCorrections(prev, p)
	u := Summarize(r, p, at)
	u.Summary.RunID = runID
	if prev.Summary.Accepted {
		accept(&u.Summary) // a person's acceptance outlives a relabel
	}
	u.Labels = append(u.Labels, history(prev)...)
	if err := write(ctx, t, prev, u); err != nil {
		return entities.Understanding{}, err
	}
	return u, nil
}

// accept marks a summary as a person accepted it.
func accept(s *entities.ReceiptSummary) {
	s.Accepted = true
	s.Status = entities.SummaryValid
}

// Stored reads a receipt's stored understanding; ok is false when it was
// never labelled.
func Stored(ctx context.Context, t items.Table, imageID string, receiptID int) (entities.Understanding, bool, error) {
	us, err := entities.LoadUnderstanding(ctx, t, imageID, receiptID)
	if err != nil {
		return entities.Understanding{}, false, err
	}
	if len(us) == 0 {
		return entities.Understanding{}, false, nil
	}
	return us[0], us[0].Summary.ReceiptID != 0, nil
}

func load(ctx context.Context, t items.Table, r Receipt) (entities.Understanding, error) {
	u, _, err := Stored(ctx, t, r.ImageID, r.ReceiptID)
	return u, err
}

// history is the stored rows a correction rejected.
func history(prev entities.Understanding) []entities.ReceiptWordLabel {
	var out []entities.ReceiptWordLabel
	for _, l := range prev.Labels {
		if l.ValidationStatus == entities.LabelInvalid {
			out = append(out, l)
		}
	}
	return out
}

// keepCorrections carries a person's stored corrections into p.
func keepCorrections(prev entities.Understanding, p Proposal) Proposal {
	rejected := map[string]bool{}
	for _, l := range prev.Labels {
		if l.ValidationStatus == entities.LabelInvalid {
			rejected[l.Key().SK] = true
		}
	}
	userLabels := map[string]bool{}
	var labels []WordLabel
	for _, l := range prev.Labels {
		if l.LabelProposedBy == SourceUser && l.ValidationStatus != entities.LabelInvalid {
			labels = append(labels, WordLabel{Word: entities.WordRef{l.LineID, l.WordID}, Label: l.Label,
				Confidence: l.Confidence, Reasoning: l.Reasoning, Source: SourceUser, ConsolidatedFrom: l.LabelConsolidatedFrom})
			userLabels[l.Label] = true
		}
	}
	fields := map[string]entities.SummaryField{}
	for k, f := range p.Fields {
		fields[k] = f
	}
	var doubts []string
	for k, f := range prev.Summary.Fields {
		if f.Source == SourceUser {
			fields[k] = f
			userLabels[k] = true
		}
	}
	for _, d := range p.Doubts {
		if name, _, ok := strings.Cut(d, ":"); ok && userLabels[name] {
			continue
		}
		doubts = append(doubts, d)
	}
	for _, l := range p.Labels {
		k := entities.ReceiptWordLabel{ImageID: prev.Summary.ImageID, ReceiptID: prev.Summary.ReceiptID,
			LineID: l.Word[0], WordID: l.Word[1], Label: l.Label}
		if userLabels[l.Label] && isReceiptLevel(l.Label) {
			continue // a person said which words these are
		}
		if prev.Summary.ReceiptID != 0 && rejected[k.Key().SK] {
			continue
		}
		labels = append(labels, l)
	}
	p.Labels, p.Fields, p.Doubts = labels, fields, doubts
	return p
}

// isReceiptLevel tells a label that names one thing per receipt (its
// words are a summary field) from one that repeats per line item.
func isReceiptLevel(label string) bool {
	switch label {
	case ProductName, Quantity, UnitPrice, LineTotal, Coupon:
		return false
	}
	return true
}

// write stores u and deletes what prev had that u no longer has (labels
// and line items the labeller no longer proposes).
func write(ctx context.Context, t items.Table, prev, u entities.Understanding) error {
	var puts []items.Item
	keep := map[items.Key]bool{}
	for _, l := range u.Labels {
		it := l.Item()
		keep[it.Key()] = true
		puts = append(puts, it)
	}
	for _, li := range u.LineItems {
		it, err := li.Item()
		if err != nil {
			return err
		}
		keep[it.Key()] = true
		puts = append(puts, it)
	}
	sum, err := u.Summary.Item()
	if err != nil {
		return err
	}
	puts = append(puts, sum)
	if err := items.PutAll(ctx, t, puts); err != nil {
		return fmt.Errorf("store labels of %s/%d: %w", u.Summary.ImageID, u.Summary.ReceiptID, err)
	}
	var gone []items.Key
	for _, l := range prev.Labels {
		if k := l.Key(); !keep[k] {
			gone = append(gone, k)
		}
	}
	for _, li := range prev.LineItems {
		if k := entities.LineItemKey(li.ImageID, li.ReceiptID, li.ItemIndex); !keep[k] {
			gone = append(gone, k)
		}
	}
	for start := 0; start < len(gone); start += items.MaxBatchWrite {
		end := min(start+items.MaxBatchWrite, len(gone))
		if err := t.BatchWrite(ctx, nil, gone[start:end]); err != nil {
			return fmt.Errorf("drop stale labels of %s/%d: %w", u.Summary.ImageID, u.Summary.ReceiptID, err)
		}
	}
	return nil
}

// FieldCorrection sets one summary field. Value is required for amounts
// and dates (the normalized form is derived from it: "12.30", an ISO
// date); Words, when given, say which printed words carry it and become
// user labels.
type FieldCorrection struct {
	Value string             `json:"value"`
	Text  *string            `json:"text,omitempty"`
	Words []entities.WordRef `json:"words,omitempty"`
}

// LabelCorrection sets or removes one word's label. With Remove, the
// word's Label row is rejected; otherwise Label is added (as the user's)
// and every other label the word carried, or From when given, is rejected.
type LabelCorrection struct {
	LineID int    `json:"line_id"`
	WordID int    `json:"word_id"`
	Label  string `json:"label"`
	From   string `json:"from,omitempty"`
	Remove bool   `json:"remove,omitempty"`
}

// Correction is what a person changes on one receipt (the PATCH body).
type Correction struct {
	Fields map[string]FieldCorrection `json:"fields,omitempty"`
	Labels []LabelCorrection          `json:"labels,omitempty"`
	// Accept says the summary is right as it is (or as corrected here):
	// it becomes VALID with its review reasons kept for the record.
	Accept bool `json:"accept,omitempty"`
}

// Correct applies a person's correction to a labelled receipt: each
// corrected field becomes the user's (its old labels rejected, kept as
// INVALID rows), each corrected word label likewise, then the summary and
// its checks are recomputed. Nothing is changed when any part of the
// correction is invalid (ErrInvalidCorrection); a receipt never labelled
// is tally.ErrNotFound.
func Correct(ctx context.Context, t items.Table, r Receipt, c Correction, at time.Time) (entities.Understanding, error) {
	prev, err := load(ctx, t, r)
	if err != nil {
		return entities.Understanding{}, err
	}
	if prev.Summary.ReceiptID == 0 {
		return entities.Understanding{}, fmt.Errorf("receipt %s/%d has no summary: %w", r.ImageID, r.ReceiptID, tally.ErrNotFound)
	}
	if len(c.Fields) == 0 && len(c.Labels) == 0 && !c.Accept {
		return entities.Understanding{}, fmt.Errorf("%w: nothing to correct", ErrInvalidCorrection)
	}
	ts := at.UTC().Format(time.RFC3339)
	labels := map[items.Key]entities.ReceiptWordLabel{}
	for _, l := range prev.Labels {
		labels[l.Key()] = l
	}
	reject := func(l entities.ReceiptWordLabel) {
		l.ValidationStatus = entities.LabelInvalid
		labels[l.Key()] = l
	}
	added := map[items.Key]bool{}
	add := func(ref entities.WordRef, name, from string) {
		l := entities.ReceiptWordLabel{ImageID: r.ImageID, ReceiptID: r.ReceiptID, LineID: ref[0], WordID: ref[1],
			Label: name, Reasoning: "corrected by a person", TimestampAdded: ts, ValidationStatus: entities.LabelValid,
			LabelProposedBy: SourceUser, LabelConsolidatedFrom: from, Confidence: 1}
		labels[l.Key()] = l
		added[l.Key()] = true
	}
	fields := map[string]entities.SummaryField{}
	for k, f := range prev.Summary.Fields {
		fields[k] = f
	}
	for _, name := range sortedKeys(c.Fields) {
		fc := c.Fields[name]
		label, err := Canonical(name)
		if err != nil {
			return entities.Understanding{}, fmt.Errorf("%w: field %v", ErrInvalidCorrection, err)
		}
		if !isReceiptLevel(label) {
			return entities.Understanding{}, fmt.Errorf("%w: %s is not a receipt field", ErrInvalidCorrection, label)
		}
		f, err := correctedField(r, label, fc)
		if err != nil {
			return entities.Understanding{}, err
		}
		for _, l := range prev.Labels {
			if l.Label == label && l.ValidationStatus != entities.LabelInvalid {
				reject(l)
			}
		}
		for _, ref := range f.Words {
			add(ref, label, "")
		}
		fields[label] = f
	}
	for i, lc := range c.Labels {
		ref := entities.WordRef{lc.LineID, lc.WordID}
		if _, ok := r.Word(ref); !ok {
			return entities.Understanding{}, fmt.Errorf("%w: labels[%d]: %w [%d, %d]", ErrInvalidCorrection, i, ErrUnknownWord, ref[0], ref[1])
		}
		name, err := Canonical(lc.Label)
		if err != nil {
			return entities.Understanding{}, fmt.Errorf("%w: labels[%d]: %v", ErrInvalidCorrection, i, err)
		}
		from := ""
		if lc.From != "" {
			if from, err = Canonical(lc.From); err != nil {
				return entities.Understanding{}, fmt.Errorf("%w: labels[%d].from: %v", ErrInvalidCorrection, i, err)
			}
		}
		if lc.Remove {
			k := entities.ReceiptWordLabel{ImageID: r.ImageID, ReceiptID: r.ReceiptID, LineID: ref[0], WordID: ref[1], Label: name}.Key()
			old, ok := labels[k]
			if !ok {
				return entities.Understanding{}, fmt.Errorf("%w: labels[%d]: word [%d, %d] has no %s label", ErrInvalidCorrection, i, ref[0], ref[1], name)
			}
			reject(old)
			continue
		}
		var olds []string
		for _, l := range labels {
			if l.LineID == ref[0] && l.WordID == ref[1] && l.Label != name && l.ValidationStatus != entities.LabelInvalid &&
				(from == "" || l.Label == from) {
				reject(l)
				olds = append(olds, l.Label)
			}
		}
		if from == "" && len(olds) == 1 {
			from = olds[0]
		}
		add(ref, name, from)
	}

	// Recompute from the corrected figures: the proposal is what is stored.
	p := Proposal{Fields: fields, Rounding: prev.Summary.Rounding, Currency: prev.Summary.Currency,
		Country: prev.Summary.Country, CardLast4: prev.Summary.CardLast4, Source: prev.Summary.ProposedBy}
	for _, d := range prev.Summary.Doubts {
		if name, _, ok := strings.Cut(d, ":"); ok {
			if _, corrected := correctedName(c, name); corrected {
				continue
			}
		}
		p.Doubts = append(p.Doubts, d)
	}
	p.Items = prev.LineItems
	var invalid []entities.ReceiptWordLabel
	for _, l := range labels {
		if l.ValidationStatus == entities.LabelInvalid {
			invalid = append(invalid, l)
			continue
		}
		p.Labels = append(p.Labels, WordLabel{Word: entities.WordRef{l.LineID, l.WordID}, Label: l.Label,
			Confidence: l.Confidence, Reasoning: l.Reasoning, Source: l.LabelProposedBy, ConsolidatedFrom: l.LabelConsolidatedFrom})
	}
	u := Summarize(r, p, at)
	u.Summary.RunID = prev.Summary.RunID
	if c.Accept || (prev.Summary.Accepted && len(c.Fields) == 0 && len(c.Labels) == 0) {
		accept(&u.Summary)
	}
	// Labels this correction did not add keep the time they were added.
	for i, l := range u.Labels {
		if old, ok := labels[l.Key()]; ok && !added[l.Key()] {
			u.Labels[i].TimestampAdded = old.TimestampAdded
		}
	}
	u.Labels = append(u.Labels, invalid...)
	if err := write(ctx, t, prev, u); err != nil {
		return entities.Understanding{}, err
	}
	return u, nil
}

// correctedName reports whether c corrects the field name (aliases
// included).
func correctedName(c Correction, name string) (string, bool) {
	for k := range c.Fields {
		if l, err := Canonical(k); err == nil && l == name {
			return l, true
		}
	}
	return "", false
}

// correctedField checks and normalizes one field correction.
func correctedField(r Receipt, label string, fc FieldCorrection) (entities.SummaryField, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidCorrection, label}, args...)...)
	}
	for _, ref := range fc.Words {
		if _, ok := r.Word(ref); !ok {
			return entities.SummaryField{}, bad("%v [%d, %d]", ErrUnknownWord, ref[0], ref[1])
		}
	}
	f := entities.SummaryField{Value: strings.TrimSpace(fc.Value), Words: fc.Words, Confidence: 1, Source: SourceUser}
	if f.Words == nil {
		f.Words = []entities.WordRef{}
	}
	switch {
	case AmountFields[label]:
		if f.Value == "" {
			break
		}
		a, err := ParseAmount(f.Value)
		if err != nil {
			return entities.SummaryField{}, bad("%q is not an amount", fc.Value)
		}
		f.Value = a.Fixed(2)
	case label == Date:
		if f.Value == "" {
			break
		}
		if _, err := time.Parse("2006-01-02", f.Value); err != nil {
			return entities.SummaryField{}, bad("%q is not a date (YYYY-MM-DD)", fc.Value)
		}
	}
	switch {
	case fc.Text != nil:
		f.Text = *fc.Text
	case len(f.Words) > 0:
		f.Text = r.Text(f.Words)
	default:
		f.Text = fc.Value
	}
	return f, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
