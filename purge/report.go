package purge

import (
	"fmt"
	"sort"
	"strings"
)

// itemNames are the item types a person reads about, in the order a
// summary lists them, with their singular and plural names.
var itemNames = []struct{ typ, one, many string }{
	{"IMAGE", "image", "images"},
	{"LINE", "line", "lines"},
	{"WORD", "word", "words"},
	{"LETTER", "letter", "letters"},
	{"RECEIPT", "receipt", "receipts"},
	{"RECEIPT_LINE", "receipt line", "receipt lines"},
	{"RECEIPT_WORD", "receipt word", "receipt words"},
	{"RECEIPT_LETTER", "receipt letter", "receipt letters"},
	{"RECEIPT_ROW", "receipt row", "receipt rows"},
	{"RECEIPT_PLACE", "place", "places"},
	{"RECEIPT_WORD_LABEL", "label", "labels"},
	{"RECEIPT_SUMMARY", "summary", "summaries"},
	{"RECEIPT_LINE_ITEM", "line item", "line items"},
	{"OCR_JOB", "OCR job", "OCR jobs"},
	{"OCR_ROUTING_DECISION", "routing decision", "routing decisions"},
	{"COMPACTION_RUN", "compaction run", "compaction runs"},
	{"IMAGE_SHA256", "sha256 claim", "sha256 claims"},
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// String is a one-line summary for people: "image X: removed 1 image, 40
// lines, …, 12 blobs, 144 vector records (compaction run purge-…)".
func (r Report) String() string {
	var parts []string
	known := map[string]bool{}
	for _, n := range itemNames {
		known[n.typ] = true
		if c := r.Items[n.typ]; c > 0 {
			parts = append(parts, count(c, n.one, n.many))
		}
	}
	var other []string
	for typ, c := range r.Items {
		if !known[typ] && c > 0 {
			other = append(other, typ)
		}
	}
	sort.Strings(other)
	for _, typ := range other {
		name := strings.ToLower(strings.ReplaceAll(typ, "_", " "))
		if name == "" {
			name = "untyped"
		}
		parts = append(parts, count(r.Items[typ], name+" item", name+" items"))
	}
	if len(r.Blobs) > 0 {
		parts = append(parts, count(len(r.Blobs), "blob", "blobs"))
	}
	vectors := 0
	for _, n := range r.Vectors {
		vectors += n
	}
	if vectors > 0 {
		parts = append(parts, count(vectors, "vector record", "vector records"))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("image %s: removed nothing", r.ImageID)
	}
	s := fmt.Sprintf("image %s: removed %s", r.ImageID, strings.Join(parts, ", "))
	if r.CompactionRun != "" {
		s += " (compaction run " + r.CompactionRun + ")"
	}
	return s
}
