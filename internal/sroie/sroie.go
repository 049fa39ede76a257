// Package sroie reads the SROIE receipts in the shared fixtures (image,
// per-line transcripts, key fields) and scores OCR text against them, so
// every test and benchmark that measures OCR quality measures it the same
// way.
package sroie

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
	Name      string // "000"
	ImagePath string
	// Lines are the transcripts of the receipt's text lines, top to bottom.
	Lines []string
	Key   Key
}

// Load reads every receipt under dir (the fixtures' sroie directory).
func Load(dir string) ([]Receipt, error) {
	imgs, err := filepath.Glob(filepath.Join(dir, "img", "*.jpg"))
	if err != nil {
		return nil, err
	}
	sort.Strings(imgs)
	var out []Receipt
	for _, p := range imgs {
		n := strings.TrimSuffix(filepath.Base(p), ".jpg")
		r := Receipt{Name: n, ImagePath: p}
		if r.Lines, err = readBox(filepath.Join(dir, "box", n+".csv")); err != nil {
			return nil, err
		}
		raw, err := os.ReadFile(filepath.Join(dir, "key", n+".json"))
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &r.Key); err != nil {
			return nil, fmt.Errorf("key %s: %w", n, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no SROIE receipts under %s", dir)
	}
	return out, nil
}

// readBox reads a box file: 8 coordinates then the transcript per line (the
// transcript may itself contain commas).
func readBox(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("box %s: %w", path, err)
	}
	var lines []string
	for _, row := range rows {
		if len(row) < 9 {
			continue
		}
		if t := normalize(strings.Join(row[8:], ",")); t != "" {
			lines = append(lines, t)
		}
	}
	return lines, nil
}

// normalize upper-cases (the transcripts are in capitals) and collapses
// white space.
func normalize(s string) string { return strings.ToUpper(strings.Join(strings.Fields(s), " ")) }

// EditDistance is the Levenshtein distance between a and b.
func EditDistance(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
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
	return prev[len(b)]
}

// LineMatchedErrors scores OCR lines against transcript lines: each
// transcript line is matched to the OCR line closest to it (by edit
// distance, ignoring case and spacing), and the distances are summed. A
// transcript line with no OCR line at all costs its length. CER is
// errs/chars.
func LineMatchedErrors(truth, got []string) (errs, chars int) {
	cand := make([][]rune, len(got))
	for i, g := range got {
		cand[i] = []rune(normalize(g))
	}
	for _, t := range truth {
		tr := []rune(normalize(t))
		chars += len(tr)
		best := len(tr)
		for _, c := range cand {
			if d := EditDistance(tr, c); d < best {
				best = d
			}
		}
		errs += best
	}
	return errs, chars
}
