package ocrtest

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/tallyhq/tally/ocr"
)

// recorder collects what a check reports, so a test can assert that the
// check catches a broken result.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// box is the geometry of the normalized rectangle x0–x1, y0–y1.
func box(x0, y0, x1, y1 float64) ocr.Geometry {
	return ocr.NewGeometry(ocr.Quad{
		TopLeft: ocr.Point{X: x0, Y: y1}, TopRight: ocr.Point{X: x1, Y: y1},
		BottomRight: ocr.Point{X: x1, Y: y0}, BottomLeft: ocr.Point{X: x0, Y: y0},
	}, 0.9)
}

// sample is a valid result: one line "AB CD" of two words of two letters.
func sample() []ocr.Line {
	letter := func(s string, x float64) ocr.Letter {
		return ocr.Letter{Text: s, Geometry: box(x, 0.5, x+0.1, 0.6)}
	}
	return []ocr.Line{{
		Text: "AB CD", Geometry: box(0.1, 0.5, 0.6, 0.6),
		Words: []ocr.Word{
			{Text: "AB", Geometry: box(0.1, 0.5, 0.3, 0.6), Letters: []ocr.Letter{letter("A", 0.1), letter("B", 0.2)}},
			{Text: "CD", Geometry: box(0.4, 0.5, 0.6, 0.6), Letters: []ocr.Letter{letter("C", 0.4), letter("D", 0.5)}},
		},
	}}
}

// turn rotates every quad of l by deg about the image's centre, as an
// engine reports text on a page placed askew.
func turn(l *ocr.Line, deg float64) {
	sin, cos := math.Sincos(deg * math.Pi / 180)
	pt := func(p ocr.Point) ocr.Point {
		x, y := p.X-0.5, p.Y-0.5
		return ocr.Point{X: 0.5 + x*cos - y*sin, Y: 0.5 + x*sin + y*cos}
	}
	g := func(g *ocr.Geometry) {
		q := g.Quad()
		*g = ocr.NewGeometry(ocr.Quad{TopLeft: pt(q.TopLeft), TopRight: pt(q.TopRight), BottomRight: pt(q.BottomRight), BottomLeft: pt(q.BottomLeft)}, g.Confidence)
	}
	g(&l.Geometry)
	for j := range l.Words {
		w := &l.Words[j]
		g(&w.Geometry)
		for k := range w.Letters {
			g(&w.Letters[k].Geometry)
		}
	}
}

func TestCheckStructure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(l *ocr.Line)
		want   string // in one of the errors; "" for none
	}{
		{"valid", func(*ocr.Line) {}, ""},
		{"valid, tilted", func(l *ocr.Line) { turn(l, 20) }, ""},
		{"valid, upside down", func(l *ocr.Line) { turn(l, 180) }, ""},
		{"line without words", func(l *ocr.Line) { l.Words, l.Text = nil, "" }, "has no words"},
		{"line text not its words", func(l *ocr.Line) { l.Text = "AB  CD" }, "joined by spaces"},
		{"words out of order", func(l *ocr.Line) {
			l.Words[0].Geometry, l.Words[1].Geometry = l.Words[1].Geometry, l.Words[0].Geometry
			for k := range 2 {
				l.Words[0].Letters[k].Geometry, l.Words[1].Letters[k].Geometry = l.Words[1].Letters[k].Geometry, l.Words[0].Letters[k].Geometry
			}
		}, `word "CD" before word "AB"`},
		{"word outside its line", func(l *ocr.Line) { l.Words[1].Geometry = box(0.4, 0.5, 0.7, 0.6) }, "outside line box"},
		{"word without letters", func(l *ocr.Line) { l.Words[0].Letters = nil }, "has no letters"},
		{"word with a space", func(l *ocr.Line) {
			l.Words[0].Text, l.Words[0].Letters[1].Text, l.Text = "A B", " B", "A B CD"
		}, "white space"},
		{"word text not its letters", func(l *ocr.Line) { l.Words[0].Text, l.Text = "AX", "AX CD" }, `letters spell "AB"`},
		{"letters out of order", func(l *ocr.Line) {
			ls := l.Words[0].Letters
			ls[0].Geometry, ls[1].Geometry = ls[1].Geometry, ls[0].Geometry
		}, `letter 2 "B" before letter 1 "A"`},
		{"letter outside its word", func(l *ocr.Line) { l.Words[0].Letters[1].Geometry = box(0.2, 0.5, 0.35, 0.6) }, "outside word box"},
		{"empty letter", func(l *ocr.Line) {
			l.Words[1].Letters = append(l.Words[1].Letters, ocr.Letter{Geometry: box(0.5, 0.5, 0.6, 0.6)})
		}, "letter 3 is empty"},
		{"confidence out of range", func(l *ocr.Line) { l.Words[1].Letters[0].Confidence = 1.5 }, "confidence 1.5 outside 0–1"},
		{"point out of range", func(l *ocr.Line) { l.TopRight.X = 1.2 }, "outside 0–1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines := sample()
			tt.mutate(&lines[0])
			r := &recorder{}
			checkStructure(r, lines)
			if tt.want == "" {
				if len(r.errs) > 0 {
					t.Errorf("errors for a valid result:\n%s", strings.Join(r.errs, "\n"))
				}
				return
			}
			for _, e := range r.errs {
				if strings.Contains(e, tt.want) {
					return
				}
			}
			t.Errorf("no error mentions %q; got:\n%s", tt.want, strings.Join(r.errs, "\n"))
		})
	}
}
