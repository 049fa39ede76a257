// Package sroie reads the SROIE receipts in the shared fixtures (image,
// per-line transcripts with their boxes, key fields) and scores against
// them — OCR text (ScoreText) and extracted key fields (ScoreFields) — so
// every test and benchmark measures quality the same way. Result turns a
// receipt's ground truth into an OCR result, for measuring the stages after
// OCR without OCR errors.
//
// Receipts 100–199 are kept out of the fixtures for independent
// evaluation; every loader skips them by name (see Reserved).
package sroie

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Key is a receipt's key fields as printed.
type Key struct {
	Company string `json:"company"`
	Date    string `json:"date"`
	Address string `json:"address"`
	Total   string `json:"total"`
}

// Receipt is one SROIE receipt.
type Receipt struct {
	Name string // "000"
	// ImagePath is the scan; "" for the transcript-only receipts of
	// LoadText.
	ImagePath string
	// Lines are the transcripts of the receipt's text lines, top to bottom,
	// upper-cased with white space collapsed (what the text scores compare).
	Lines []string
	// Boxes are the same lines with their positions and original case, for
	// building an OCR result out of the ground truth (see Result).
	Boxes []Box
	Key   Key
}

// Box is one transcript line of a box file where it was printed.
type Box struct {
	// Quad is the line's corners in pixels (x, y; origin top-left, y
	// down), clockwise from the top-left as the box file lists them.
	Quad [4][2]float64
	// Text is the transcript with white space collapsed, case kept.
	Text string
}

// Reserved reports whether name is one of receipts 100–199, which are kept
// out of the fixtures to evaluate Tally independently: every loader skips
// them, so that no test or tuning can see them even if they are copied in.
// Any name whose leading digits read 100–199 counts ("150", "0150",
// "150-copy").
func Reserved(name string) bool {
	i := 0
	for i < len(name) && name[i] >= '0' && name[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(name[:i])
	return err == nil && n >= 100 && n <= 199
}

// Load reads every receipt under dir (the fixtures' sroie directory) that
// has an image, except the reserved ones.
func Load(dir string) ([]Receipt, error) {
	imgs, err := filepath.Glob(filepath.Join(dir, "img", "*.jpg"))
	if err != nil {
		return nil, err
	}
	sort.Strings(imgs)
	var out []Receipt
	for _, p := range imgs {
		n := strings.TrimSuffix(filepath.Base(p), ".jpg")
		if Reserved(n) {
			continue
		}
		r, err := readReceipt(n, filepath.Join(dir, "box", n+".csv"), filepath.Join(dir, "key", n+".json"))
		if err != nil {
			return nil, err
		}
		r.ImagePath = p
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no SROIE receipts under %s", dir)
	}
	return out, nil
}

// LoadText reads the transcript-only receipts under dir/text (box and key
// files, no image), except the reserved ones: the bulk of the ground truth
// for building and checking field extraction.
func LoadText(dir string) ([]Receipt, error) {
	boxes, err := filepath.Glob(filepath.Join(dir, "text", "box", "*.csv"))
	if err != nil {
		return nil, err
	}
	sort.Strings(boxes)
	var out []Receipt
	for _, p := range boxes {
		n := strings.TrimSuffix(filepath.Base(p), ".csv")
		if Reserved(n) {
			continue
		}
		r, err := readReceipt(n, p, filepath.Join(dir, "text", "key", n+".json"))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no SROIE transcripts under %s", filepath.Join(dir, "text"))
	}
	return out, nil
}

// LoadTranscripts reads every receipt with a transcript, LoadAll's and
// LoadText's, sorted by name: all the ground truth there is for measuring
// field extraction on text.
func LoadTranscripts(dir string) ([]Receipt, error) {
	out, err := LoadAll(dir)
	if err != nil {
		return nil, err
	}
	text, err := LoadText(dir)
	if err != nil {
		return nil, err
	}
	out = append(out, text...)
	slices.SortStableFunc(out, func(a, b Receipt) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, fmt.Errorf("SROIE receipt %s appears twice under %s", out[i].Name, dir)
		}
	}
	return out, nil
}

// readReceipt reads one receipt's box and key files.
func readReceipt(name, boxPath, keyPath string) (Receipt, error) {
	r := Receipt{Name: name}
	var err error
	if r.Boxes, err = readBoxes(boxPath); err != nil {
		return Receipt{}, err
	}
	for _, b := range r.Boxes {
		r.Lines = append(r.Lines, normalize(b.Text))
	}
	raw, err := os.ReadFile(keyPath)
	if err != nil {
		return Receipt{}, err
	}
	if err := json.Unmarshal(raw, &r.Key); err != nil {
		return Receipt{}, fmt.Errorf("key %s: %w", name, err)
	}
	return r, nil
}

// readBoxes reads a box file: per line 8 pixel coordinates (x1,y1 … x4,y4,
// clockwise from the top-left) then the transcript, which may itself hold
// commas and stray quotes. It splits on the first eight commas instead of
// reading CSV, because a transcript that starts with a quote (text/box/381:
// `"EDEEMED WITHIN …`) makes a CSV reader swallow the lines after it. Blank
// lines and lines with an empty transcript are skipped; a line whose
// coordinates do not parse is an error.
func readBoxes(path string) ([]Box, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.TrimPrefix(string(raw), "\ufeff")
	var boxes []Box
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, ",", 9)
		if len(f) < 9 {
			return nil, fmt.Errorf("box %s:%d: %d fields, want 8 coordinates and a transcript", path, i+1, len(f))
		}
		var b Box
		for j := range 8 {
			v, err := strconv.ParseFloat(strings.TrimSpace(f[j]), 64)
			if err != nil {
				return nil, fmt.Errorf("box %s:%d: coordinate %d: %w", path, i+1, j+1, err)
			}
			b.Quad[j/2][j%2] = v
		}
		if b.Text = strings.Join(strings.Fields(f[8]), " "); b.Text != "" {
			boxes = append(boxes, b)
		}
	}
	return boxes, nil
}

// normalize upper-cases (the transcripts are in capitals) and collapses
// white space.
func normalize(s string) string { return strings.ToUpper(strings.Join(strings.Fields(s), " ")) }

// EditDistance is the Levenshtein distance between a and b.
func EditDistance(a, b []rune) int { return lastRow(a, b, false)[len(b)] }

// lastRow is the last row of the edit-distance table of a against b: entry
// j is the distance between a and b[:j], or, with freeStart, between a and
// the best substring of b ending at j.
func lastRow(a, b []rune, freeStart bool) []int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		if !freeStart {
			prev[j] = j
		}
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev
}

// LineMatchedErrors scores OCR lines against transcript lines: each
// transcript line is matched to the OCR line closest to it (by edit
// distance, ignoring case and spacing), and the distances are summed. A
// transcript line with no OCR line at all costs its length. CER is
// errs/chars.
func LineMatchedErrors(truth, got []string) (errs, chars int) {
	return matchedErrors(truth, got, EditDistance)
}

// matchedErrors sums, over the transcript lines, the least distance to any
// OCR line (a missing line costs its length).
func matchedErrors(truth, got []string, distance func(a, b []rune) int) (errs, chars int) {
	cand := make([][]rune, len(got))
	for i, g := range got {
		cand[i] = []rune(normalize(g))
	}
	for _, t := range truth {
		tr := []rune(normalize(t))
		chars += len(tr)
		best := len(tr)
		for _, c := range cand {
			best = min(best, distance(tr, c))
		}
		errs += best
	}
	return errs, chars
}

// LoadAll reads the 30 receipts of dir and the 30 of dir/extra: what the
// benchmarks measure on.
func LoadAll(dir string) ([]Receipt, error) {
	out, err := Load(dir)
	if err != nil {
		return nil, err
	}
	extra, err := Load(filepath.Join(dir, "extra"))
	if err != nil {
		return nil, fmt.Errorf("extra: %w", err)
	}
	return append(out, extra...), nil
}

// Score is one receipt's OCR text measured against its transcripts and key
// fields. Errors are edit distances summed over the transcript lines, Chars
// the transcripts' lengths; the NoSpace variants ignore spaces altogether.
type Score struct {
	LineErrs, LineErrsNoSpace int // each transcript line against the closest whole OCR line
	SegErrs, SegErrsNoSpace   int // against its best window inside any OCR line
	Chars, CharsNoSpace       int

	Total                   bool // the printed total appears in the text
	Date                    bool
	Company, CompanyNoSpace bool
	Address, AddressNoSpace bool
}

// Tally sums the scores of many receipts: errors and characters added up,
// and for each key field the number of receipts that have it in their text.
type Tally struct {
	Receipts                    int
	LineErrs, LineErrsNoSpace   int
	SegErrs, SegErrsNoSpace     int
	Chars, CharsNoSpace         int
	Totals, Dates               int
	Companies, CompaniesNoSpace int
	Addresses, AddressesNoSpace int
}

// Add counts one receipt's score.
func (t *Tally) Add(s Score) {
	t.Receipts++
	t.LineErrs += s.LineErrs
	t.LineErrsNoSpace += s.LineErrsNoSpace
	t.SegErrs += s.SegErrs
	t.SegErrsNoSpace += s.SegErrsNoSpace
	t.Chars += s.Chars
	t.CharsNoSpace += s.CharsNoSpace
	for _, f := range []struct {
		ok bool
		n  *int
	}{{s.Total, &t.Totals}, {s.Date, &t.Dates}, {s.Company, &t.Companies}, {s.CompanyNoSpace, &t.CompaniesNoSpace},
		{s.Address, &t.Addresses}, {s.AddressNoSpace, &t.AddressesNoSpace}} {
		if f.ok {
			*f.n++
		}
	}
}

// CER is the line-matched character error rate, with and without spaces.
func (t Tally) CER() (spaces, noSpace float64) {
	return ratio(t.LineErrs, t.Chars), ratio(t.LineErrsNoSpace, t.CharsNoSpace)
}

// SegmentCER is the segment character error rate, with and without spaces.
func (t Tally) SegmentCER() (spaces, noSpace float64) {
	return ratio(t.SegErrs, t.Chars), ratio(t.SegErrsNoSpace, t.CharsNoSpace)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ScoreText scores OCR lines against r. Case is ignored everywhere; a key
// field is present when it appears in the lines joined by single spaces.
func ScoreText(r Receipt, lines []string) Score {
	var s Score
	s.LineErrs, s.Chars = LineMatchedErrors(r.Lines, lines)
	truthNS, gotNS := mapAll(r.Lines, noSpace), mapAll(lines, noSpace)
	s.LineErrsNoSpace, s.CharsNoSpace = LineMatchedErrors(truthNS, gotNS)
	s.SegErrs, _ = SegmentErrors(r.Lines, lines)
	s.SegErrsNoSpace, _ = SegmentErrors(truthNS, gotNS)

	text := normalize(strings.Join(lines, " "))
	has := func(field string) (exact, ns bool) {
		f := normalize(field)
		if f == "" {
			return false, false
		}
		return strings.Contains(text, f), strings.Contains(noSpace(text), noSpace(f))
	}
	s.Total, _ = has(r.Key.Total)
	s.Date, _ = has(r.Key.Date)
	s.Company, s.CompanyNoSpace = has(r.Key.Company)
	s.Address, s.AddressNoSpace = has(r.Key.Address)
	return s
}

// SegmentErrors scores OCR lines against transcript lines without caring
// how an engine split a printed row into lines: each transcript line costs
// its edit distance to its best-matching window (substring) of any OCR
// line. Case and runs of white space are ignored.
func SegmentErrors(truth, got []string) (errs, chars int) {
	return matchedErrors(truth, got, windowDistance)
}

// windowDistance is the least edit distance between a and any substring of
// b (free start and end in b).
func windowDistance(a, b []rune) int { return slices.Min(lastRow(a, b, true)) }

func noSpace(s string) string { return strings.Join(strings.Fields(s), "") }

func mapAll(ss []string, f func(string) string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}
