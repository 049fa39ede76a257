package sroie_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
	"github.com/tallyhq/tally/ocr"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func nearPoint(p ocr.Point, x, y float64) bool { return near(p.X, x) && near(p.Y, y) }

func TestResultGeometry(t *testing.T) {
	t.Parallel()
	r := sroie.Receipt{Name: "x", Boxes: []sroie.Box{
		{Quad: [4][2]float64{{0, 0}, {100, 0}, {100, 20}, {0, 20}}, Text: "AB CD"},
		{Quad: [4][2]float64{{10, 30}, {50, 30}, {50, 50}, {10, 50}}, Text: "Call 03-2141 8888"},
	}}
	res, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	const w, h = 110.0, 60.0 // max x 100, max y 50, plus the 10 px margin
	c := res.Classification
	if c == nil || c.ImageWidth != w || c.ImageHeight != h || c.ImageType != ocr.TypeNative || !res.SinglePass() {
		t.Fatalf("classification %+v", c)
	}
	if len(res.Lines) != 2 || len(res.Receipts) != 1 {
		t.Fatalf("%d lines, %d receipts", len(res.Lines), len(res.Receipts))
	}
	rc := res.Receipts[0]
	if rc.WarpedWidth != w || rc.WarpedHeight != h || len(rc.LineIndices) != 2 || rc.LineIndices[1] != 1 ||
		!nearPoint(rc.Bounds.TopLeft, 0, 1) || !nearPoint(rc.Bounds.BottomRight, 1, 0) {
		t.Errorf("receipt %+v", rc)
	}
	l := res.Lines[0]
	if l.Text != "AB CD" || len(l.Words) != 2 || l.Confidence != 1 {
		t.Fatalf("line %+v", l)
	}
	tests := []struct {
		name   string
		g      ocr.Geometry
		x0, x1 float64 // pixel x of the left and right edges
	}{
		{"line", l.Geometry, 0, 100},
		{"word AB", l.Words[0].Geometry, 0, 40},
		{"word CD", l.Words[1].Geometry, 60, 100},
		{"letter C", l.Words[1].Letters[0].Geometry, 60, 80},
		{"letter D", l.Words[1].Letters[1].Geometry, 80, 100},
	}
	for _, tt := range tests {
		if !nearPoint(tt.g.TopLeft, tt.x0/w, 1) || !nearPoint(tt.g.TopRight, tt.x1/w, 1) ||
			!nearPoint(tt.g.BottomLeft, tt.x0/w, 1-20/h) || !nearPoint(tt.g.BottomRight, tt.x1/w, 1-20/h) ||
			tt.g.Confidence != 1 {
			t.Errorf("%s: geometry %+v, want x %v–%v px", tt.name, tt.g, tt.x0, tt.x1)
		}
	}
	if n := len(l.Words[1].Letters); n != 2 || l.Words[1].Letters[0].Text != "C" {
		t.Errorf("letters of CD: %+v", l.Words[1].Letters)
	}
	// Annotated on both the image's and the receipt's lines.
	for where, lines := range map[string][]ocr.Line{"image": res.Lines, "receipt": rc.Lines} {
		if e := lines[1].Words[1].ExtractedData; e == nil || e.Type != ocr.ExtractPhone {
			t.Errorf("%s: phone word extracted %+v", where, e)
		}
	}
	if _, err := (sroie.Receipt{Name: "empty"}).Result(); err == nil {
		t.Error("a receipt without boxes gave a result")
	}
	if _, err := (sroie.Receipt{Boxes: []sroie.Box{{Quad: [4][2]float64{{-5, 0}, {10, 0}, {10, 5}, {-5, 5}}, Text: "X"}}}).Result(); err == nil {
		t.Error("a box left of the image gave a result")
	}
}

func TestResultBuildsEntities(t *testing.T) {
	t.Parallel()
	rs, err := sroie.LoadTranscripts(filepath.Join(fixtures.Dir(t), "sroie"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]sroie.Receipt{}
	for _, r := range rs {
		byName[r.Name] = r
	}
	// 000 and 030 have images (img/, extra/img/); 381 and 416 are
	// transcripts whose lines start with a quote.
	for _, name := range []string{"000", "030", "381", "416"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, ok := byName[name]
			if !ok {
				t.Fatalf("no receipt %s", name)
			}
			res, err := r.Result()
			if err != nil {
				t.Fatal(err)
			}
			set, err := entities.Build(entities.Source{ImageID: "sroie-" + name, Result: res, Added: time.Unix(0, 0)})
			if err != nil {
				t.Fatal(err)
			}
			words, letters := 0, 0
			for _, b := range r.Boxes {
				words += len(strings.Fields(b.Text))
				letters += utf8.RuneCountInString(strings.ReplaceAll(b.Text, " ", ""))
			}
			if len(set.Receipts) != 1 || len(set.ReceiptLines) != len(r.Boxes) || len(set.Lines) != len(r.Boxes) ||
				len(set.ReceiptWords) != words || len(set.Words) != words ||
				len(set.ReceiptLetters) != letters || len(set.Letters) != letters {
				t.Errorf("%d receipts, %d/%d lines, %d/%d words, %d/%d letters; want 1, %d lines, %d words, %d letters",
					len(set.Receipts), len(set.Lines), len(set.ReceiptLines), len(set.Words), len(set.ReceiptWords),
					len(set.Letters), len(set.ReceiptLetters), len(r.Boxes), words, letters)
			}
			want, ok := sroie.ParseDate(r.Key.Date)
			if !ok {
				t.Fatalf("key date %q", r.Key.Date)
			}
			found := false
			for _, w := range set.ReceiptWords {
				if e := w.ExtractedData; e != nil && e.Type == ocr.ExtractDate && strings.HasPrefix(e.Value, want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no receipt word carries the key date %s (%s)", want, r.Key.Date)
			}
		})
	}
}
