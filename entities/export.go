package entities

import "slices"

// Export is the JSON object `tally export` prints for one image, in the
// shape of the old system's exports: one array per entity kind, never
// null. ReceiptRows is Tally's addition.
type Export struct {
	Images         []Image         `json:"images"`
	Lines          []Line          `json:"lines"`
	Words          []Word          `json:"words"`
	Letters        []Letter        `json:"letters"`
	Receipts       []Receipt       `json:"receipts"`
	ReceiptLines   []ReceiptLine   `json:"receipt_lines"`
	ReceiptWords   []ReceiptWord   `json:"receipt_words"`
	ReceiptLetters []ReceiptLetter `json:"receipt_letters"`
	ReceiptRows    []ReceiptRow    `json:"receipt_rows"`
	ReceiptPlaces  []ReceiptPlace  `json:"receipt_places"`
	// Receipt understanding (labels, summaries, line items).
	ReceiptWordLabels []ReceiptWordLabel `json:"receipt_word_labels"`
	ReceiptSummaries  []ReceiptSummary   `json:"receipt_summaries"`
	ReceiptLineItems  []ReceiptLineItem  `json:"receipt_line_items"`
}

// Export returns s as the export object: copies of its slices, each
// non-nil, with every word's tags an array.
func (s Set) Export() Export {
	e := Export{
		Images:         orEmpty(s.Images),
		Lines:          orEmpty(s.Lines),
		Words:          orEmpty(s.Words),
		Letters:        orEmpty(s.Letters),
		Receipts:       orEmpty(s.Receipts),
		ReceiptLines:   orEmpty(s.ReceiptLines),
		ReceiptWords:   orEmpty(s.ReceiptWords),
		ReceiptLetters: orEmpty(s.ReceiptLetters),
		ReceiptRows:    orEmpty(s.ReceiptRows),
		ReceiptPlaces:  orEmpty(s.ReceiptPlaces),

		ReceiptWordLabels: orEmpty(s.ReceiptWordLabels),
		ReceiptSummaries:  orEmpty(s.ReceiptSummaries),
		ReceiptLineItems:  orEmpty(s.ReceiptLineItems),
	}
	for i := range e.Words {
		e.Words[i].Tags = orEmpty(e.Words[i].Tags)
	}
	for i := range e.ReceiptWords {
		e.ReceiptWords[i].Tags = orEmpty(e.ReceiptWords[i].Tags)
	}
	for i := range e.ReceiptRows {
		e.ReceiptRows[i].LineIDs = orEmpty(e.ReceiptRows[i].LineIDs)
	}
	return e
}

// orEmpty copies xs, giving an empty slice for nil so JSON shows [].
func orEmpty[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return slices.Clone(xs)
}
