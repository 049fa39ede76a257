package tesseract

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tallyhq/tally/ocr"
)

// page wraps hOCR body content in the document tesseract writes around it.
func page(body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title></title>
  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>
  <meta name='ocr-system' content='tesseract 5.3.0' />
 </head>
 <body>
  <div class='ocr_page' id='page_1' title='image "stdin"; bbox 0 0 200 100; ppageno 0; scan_res 70 70'>
` + body + `
  </div>
 </body>
</html>
`
}

// twoWords is one level line of two words on a 200×100 image: the first with
// letter boxes, the second without (and with an entity in its text).
const twoWords = `
   <div class='ocr_carea' id='block_1_1' title="bbox 10 20 110 40">
    <p class='ocr_par' id='par_1_1' lang='eng' title="bbox 10 20 110 40">
     <span class='ocr_line' id='line_1_1' title="bbox 10 20 110 40; baseline 0 -5; x_size 20; x_descenders 5; x_ascenders 5">
      <span class='ocrx_word' id='word_1_1' title='bbox 10 20 50 40; x_wconf 90'>
       <span class='ocrx_cinfo' title='x_bboxes 10 20 30 40; x_conf 80'>A</span>
       <span class='ocrx_cinfo' title='x_bboxes 30 20 50 40; x_conf 100'>B</span>
      </span>
      <span class='ocrx_word' id='word_1_2' title='bbox 65 20 110 40; x_wconf 70'>C&amp;D</span>
     </span>
    </p>
   </div>`

const eps = 1e-9

func near(a, b float64) bool { return math.Abs(a-b) < eps }

func wantBox(t *testing.T, what string, g ocr.Geometry, x, y, w, h float64) {
	t.Helper()
	b := g.BoundingBox
	if !near(b.X, x) || !near(b.Y, y) || !near(b.Width, w) || !near(b.Height, h) {
		t.Errorf("%s box = %+v, want {X:%g Y:%g Width:%g Height:%g}", what, b, x, y, w, h)
	}
}

func wantPoint(t *testing.T, what string, got ocr.Point, x, y float64) {
	t.Helper()
	if !near(got.X, x) || !near(got.Y, y) {
		t.Errorf("%s = (%g, %g), want (%g, %g)", what, got.X, got.Y, x, y)
	}
}

func parse(t *testing.T, doc string, w, h int) []ocr.Line {
	t.Helper()
	lines, err := parseHOCR(strings.NewReader(doc), w, h)
	if err != nil {
		t.Fatalf("parseHOCR: %v", err)
	}
	return lines
}

func TestParseHOCRLevelLine(t *testing.T) {
	t.Parallel()
	lines := parse(t, page(twoWords), 200, 100)
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1", len(lines))
	}
	l := lines[0]
	if l.Text != "AB C&D" {
		t.Errorf("line text = %q, want %q", l.Text, "AB C&D")
	}
	// Pixel y 20..40 of 100 is normalized 0.6..0.8 with y up.
	wantBox(t, "line", l.Geometry, 0.05, 0.6, 0.5, 0.2)
	wantPoint(t, "line top-left", l.TopLeft, 0.05, 0.8)
	wantPoint(t, "line bottom-right", l.BottomRight, 0.55, 0.6)
	if l.AngleDegrees != 0 {
		t.Errorf("level line angle = %g, want 0", l.AngleDegrees)
	}
	if !near(l.Confidence, 0.8) {
		t.Errorf("line confidence = %g, want mean of words 0.8", l.Confidence)
	}
	if len(l.Words) != 2 {
		t.Fatalf("got %d words, want 2", len(l.Words))
	}

	ab := l.Words[0]
	if ab.Text != "AB" || !near(ab.Confidence, 0.9) {
		t.Errorf("word 1 = %q conf %g, want \"AB\" conf 0.9", ab.Text, ab.Confidence)
	}
	wantBox(t, "word 1", ab.Geometry, 0.05, 0.6, 0.2, 0.2)
	if len(ab.Letters) != 2 {
		t.Fatalf("word 1 has %d letters, want 2", len(ab.Letters))
	}
	wantBox(t, "letter A", ab.Letters[0].Geometry, 0.05, 0.6, 0.1, 0.2)
	wantBox(t, "letter B", ab.Letters[1].Geometry, 0.15, 0.6, 0.1, 0.2)
	if !near(ab.Letters[0].Confidence, 0.8) || !near(ab.Letters[1].Confidence, 1) {
		t.Errorf("letter confidences = %g, %g, want 0.8, 1 (x_conf/100)", ab.Letters[0].Confidence, ab.Letters[1].Confidence)
	}

	// Without letter boxes, the word box is split evenly by rune.
	cd := l.Words[1]
	if cd.Text != "C&D" || len(cd.Letters) != 3 {
		t.Fatalf("word 2 = %q with %d letters, want \"C&D\" with 3", cd.Text, len(cd.Letters))
	}
	for i, want := range []string{"C", "&", "D"} {
		c := cd.Letters[i]
		if c.Text != want {
			t.Errorf("letter %d = %q, want %q", i+1, c.Text, want)
		}
		wantBox(t, "letter "+want, c.Geometry, (65+15*float64(i))/200, 0.6, 15.0/200, 0.2)
		if !near(c.Confidence, 0.7) {
			t.Errorf("letter %q confidence = %g, want the word's 0.7", want, c.Confidence)
		}
	}
}

func TestParseHOCRBaselineSlope(t *testing.T) {
	t.Parallel()
	// A 100×100 image; the baseline rises 1 pixel every 10 (slope -0.1 in
	// pixel space, where y points down).
	doc := page(`
     <span class='ocr_line' title="bbox 0 0 100 30; baseline -0.1 -3">
      <span class='ocrx_word' title='bbox 0 10 40 30; x_wconf 50'>rise</span>
      <span class='ocrx_word' title='bbox 50 0 100 20; x_wconf 50'>up</span>
     </span>`)
	lines := parse(t, doc, 100, 100)
	if len(lines) != 1 || len(lines[0].Words) != 2 {
		t.Fatalf("got %+v, want one line of two words", lines)
	}
	l := lines[0]
	// The parallelogram inside the box: the top edge runs from 10 px below
	// the box's top on the left to its top on the right.
	wantPoint(t, "line top-left", l.TopLeft, 0, 0.9)
	wantPoint(t, "line top-right", l.TopRight, 1, 1)
	wantPoint(t, "line bottom-right", l.BottomRight, 1, 0.8)
	wantPoint(t, "line bottom-left", l.BottomLeft, 0, 0.7)
	wantBox(t, "line", l.Geometry, 0, 0.7, 1, 0.3)
	if want := math.Atan(0.1) * 180 / math.Pi; !near(l.AngleDegrees, want) {
		t.Errorf("line angle = %g°, want %g° (text rising to the right)", l.AngleDegrees, want)
	}
	for i, w := range l.Words {
		if !near(w.AngleDegrees, l.AngleDegrees) {
			t.Errorf("word %d angle = %g°, want the line's %g°", i+1, w.AngleDegrees, l.AngleDegrees)
		}
		for _, c := range w.Letters {
			if c.AngleDegrees != 0 {
				t.Errorf("letter %q angle = %g, want axis-aligned letters", c.Text, c.AngleDegrees)
			}
		}
	}
	wantPoint(t, "word 1 top-left", l.Words[0].TopLeft, 0, 0.86)
	wantBox(t, "word 1", l.Words[0].Geometry, 0, 0.7, 0.4, 0.2)
}

func TestParseHOCRSteepSlopeKeepsABand(t *testing.T) {
	t.Parallel()
	// A slope of 1 across a 100-pixel-wide, 20-pixel-high box cannot be
	// text: the band of text keeps half the line's text height (x_size), or
	// a quarter of the box when the line has none.
	tests := []struct {
		name       string
		title      string
		wantTop    [2]float64 // top-right y, bottom-left y
		wantBottom [2]float64
	}{
		{"x_size 16", "bbox 0 40 100 60; baseline 1 0; x_size 16", [2]float64{0.6, 0.48}, [2]float64{0.4, 0.52}},
		{"no x_size", "bbox 0 40 100 60; baseline 1 0", [2]float64{0.6, 0.45}, [2]float64{0.4, 0.55}},
		{"x_size larger than the box", "bbox 0 40 100 60; baseline 1 0; x_size 90", [2]float64{0.6, 0.6}, [2]float64{0.4, 0.4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := page(`<span class='ocr_line' title="` + tt.title + `"><span class='ocrx_word' title='bbox 0 40 100 60; x_wconf 50'>x</span></span>`)
			l := parse(t, doc, 100, 100)[0]
			wantPoint(t, "top-left", l.TopLeft, 0, tt.wantTop[0])
			wantPoint(t, "top-right", l.TopRight, 1, tt.wantTop[1])
			wantPoint(t, "bottom-right", l.BottomRight, 1, tt.wantBottom[0])
			wantPoint(t, "bottom-left", l.BottomLeft, 0, tt.wantBottom[1])
			wantBox(t, "line", l.Geometry, 0, 0.4, 1, 0.2)
		})
	}
}

func TestParseHOCRSkipsAndRecovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		body      string
		wantLines []string
	}{
		{
			name:      "no lines",
			body:      ``,
			wantLines: nil,
		},
		{
			name: "whitespace-only words and a line without words",
			body: `<span class='ocr_line' title="bbox 0 0 50 10"><span class='ocrx_word' title='bbox 0 0 10 10; x_wconf 90'> </span>
			       <span class='ocrx_word' title='bbox 10 0 20 10; x_wconf 90'><span class='ocrx_cinfo' title='x_bboxes 10 0 20 10; x_conf 90'> </span></span></span>
			       <span class='ocr_line' title="bbox 0 20 50 30"></span>
			       <span class='ocr_line' title="bbox 0 40 50 50"><span class='ocrx_word' title='bbox 0 40 10 50; x_wconf 90'>kept</span></span>`,
			wantLines: []string{"kept"},
		},
		{
			name: "caption, header and textfloat are lines too",
			body: `<span class='ocr_caption' title="bbox 0 0 50 10"><span class='ocrx_word' title='bbox 0 0 50 10; x_wconf 90'>caption</span></span>
			       <span class='ocr_header' title="bbox 0 20 50 30"><span class='ocrx_word' title='bbox 0 20 50 30; x_wconf 90'>header</span></span>
			       <span class='ocr_textfloat' title="bbox 0 40 50 50"><span class='ocrx_word' title='bbox 0 40 50 50; x_wconf 90'>float</span></span>`,
			wantLines: []string{"caption", "header", "float"},
		},
		{
			name:      "word without bbox takes its letters' boxes",
			body:      `<span class='ocr_line'><span class='ocrx_word'><span class='ocrx_cinfo' title='x_bboxes 0 0 5 5; x_conf 90'>o</span><span class='ocrx_cinfo' title='x_bboxes 5 0 10 5; x_conf 70'>k</span></span></span>`,
			wantLines: []string{"ok"},
		},
		{
			name:      "word without any box is dropped",
			body:      `<span class='ocr_line' title="bbox 0 0 50 10"><span class='ocrx_word'>lost</span><span class='ocrx_word' title='bbox 0 0 50 10'>found</span></span>`,
			wantLines: []string{"found"},
		},
		{
			name:      "words outside a line are ignored",
			body:      `<span class='ocrx_word' title='bbox 0 0 10 10; x_wconf 90'>stray</span>`,
			wantLines: nil,
		},
		{
			name:      "non-finite and short properties are ignored",
			body:      `<span class='ocr_line' title="bbox 0 0 NaN 10; baseline Inf"><span class='ocrx_word' title='bbox 0 0 50 10; x_wconf NaN'>odd</span><span class='ocrx_word' title='bbox 1 2 3'>gone</span></span>`,
			wantLines: []string{"odd"},
		},
		{
			name:      "multiple classes and multi-rune letters",
			body:      `<span class='ocr_line extra' title="bbox 0 0 50 10"><span class="x ocrx_word" title='bbox 0 0 30 10; x_wconf 90'><span class='ocrx_cinfo' title='x_bboxes 0 0 20 10; x_conf 90'>ﬀé</span><span class='ocrx_cinfo' title='x_bboxes 20 0 30 10; x_conf 90'>s</span></span></span>`,
			wantLines: []string{"ﬀés"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines := parse(t, page(tt.body), 200, 100)
			var got []string
			for _, l := range lines {
				got = append(got, l.Text)
			}
			if strings.Join(got, "|") != strings.Join(tt.wantLines, "|") {
				t.Errorf("lines = %q, want %q", got, tt.wantLines)
			}
			checkParsed(t, lines)
		})
	}
}

func TestParseHOCRClampsIntoImage(t *testing.T) {
	t.Parallel()
	doc := page(`<span class='ocr_line' title="bbox -20 -5 250 150; baseline 0 0"><span class='ocrx_word' title='bbox 190 90 250 150; x_wconf 150'>edge</span></span>`)
	lines := parse(t, doc, 200, 100)
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1", len(lines))
	}
	wantBox(t, "line", lines[0].Geometry, 0, 0, 1, 1)
	w := lines[0].Words[0]
	wantBox(t, "word", w.Geometry, 0.95, 0, 0.05, 0.1)
	if w.Confidence != 1 {
		t.Errorf("x_wconf 150 gave confidence %g, want it clamped to 1", w.Confidence)
	}
	checkParsed(t, lines)
}

func TestParseHOCRLineCoversItsWords(t *testing.T) {
	t.Parallel()
	// Tesseract's line box leaves out a tall dash that it reports as a word.
	doc := page(`<span class='ocr_line' title="bbox 10 20 110 30; baseline 0 0"><span class='ocrx_word' title='bbox 10 20 50 30; x_wconf 90'>PRICE</span><span class='ocrx_word' title='bbox 60 15 70 35; x_wconf 40'>—</span></span>`)
	l := parse(t, doc, 200, 100)[0]
	wantBox(t, "line", l.Geometry, 0.05, 0.65, 0.5, 0.2)
}

func TestParseHOCRErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		w, h int
	}{
		{"truncated", page(twoWords)[:400], 200, 100},
		{"bad markup", "<html><body <<<", 200, 100},
		{"no pixels", page(twoWords), 0, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := parseHOCR(strings.NewReader(tt.doc), tt.w, tt.h); err == nil {
				t.Error("parseHOCR succeeded, want an error")
			}
		})
	}
}

func TestProperty(t *testing.T) {
	t.Parallel()
	title := "bbox 1 2 3 4; baseline -0.003 -2; x_size 26.75; x_wconf 95"
	tests := []struct {
		name string
		n    int
		want []float64
	}{
		{"bbox", 4, []float64{1, 2, 3, 4}},
		{"baseline", 2, []float64{-0.003, -2}},
		{"x_wconf", 1, []float64{95}},
		{"x_size", 1, []float64{26.75}},
		{"x_conf", 1, nil},
		{"bbox", 5, nil},
	}
	for _, tt := range tests {
		got, ok := property(title, tt.name, tt.n)
		if ok != (tt.want != nil) || len(got) != len(tt.want) {
			t.Errorf("property(%q, %d) = %v, %v; want %v", tt.name, tt.n, got, ok, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("property(%q)[%d] = %g, want %g", tt.name, i, got[i], tt.want[i])
			}
		}
	}
}

// checkParsed asserts what every parse result promises: geometry in range,
// one letter per rune, line text made of its words.
func checkParsed(t *testing.T, lines []ocr.Line) {
	t.Helper()
	for i, l := range lines {
		if err := l.Validate(); err != nil {
			t.Errorf("line %d: %v", i+1, err)
		}
		if len(l.Words) == 0 {
			t.Errorf("line %d %q has no words", i+1, l.Text)
		}
		var texts []string
		for j, w := range l.Words {
			texts = append(texts, w.Text)
			if strings.TrimSpace(w.Text) == "" {
				t.Errorf("line %d word %d is blank", i+1, j+1)
			}
			if err := w.Validate(); err != nil {
				t.Errorf("line %d word %d: %v", i+1, j+1, err)
			}
			if n := utf8.RuneCountInString(w.Text); len(w.Letters) != n {
				t.Errorf("line %d word %q: %d letters for %d runes", i+1, w.Text, len(w.Letters), n)
			}
			for k, c := range w.Letters {
				if err := c.Validate(); err != nil {
					t.Errorf("line %d word %d letter %d: %v", i+1, j+1, k+1, err)
				}
			}
		}
		if want := strings.Join(texts, " "); l.Text != want {
			t.Errorf("line %d text %q, want its words joined %q", i+1, l.Text, want)
		}
	}
}

func FuzzParseHOCR(f *testing.F) {
	f.Add([]byte(page(twoWords)))
	f.Add([]byte(page(`<span class='ocr_line' title="bbox 0 0 100 30; baseline -0.1 -3"><span class='ocrx_word' title='bbox 0 10 40 30; x_wconf 50'>rise</span></span>`)))
	f.Add([]byte(page(`<span class='ocr_header'><span class='ocrx_word'><span class='ocrx_cinfo' title='x_bboxes 0 0 5 5; x_conf 90'>o</span></span></span>`)))
	f.Add([]byte(page(twoWords)[:300]))
	f.Add([]byte("<span class='ocr_line'><span class='ocrx_word' title='bbox 1e308 -1e308 0 0; x_wconf -1'>&#0;</span>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := parseHOCR(strings.NewReader(string(data)), 37, 91)
		if err != nil {
			if lines != nil {
				t.Fatalf("error %v came with lines %v", err, lines)
			}
			return
		}
		checkParsed(t, lines)
	})
}

func BenchmarkParseHOCR(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 40; i++ {
		sb.WriteString(twoWords)
	}
	doc := page(sb.String())
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseHOCR(strings.NewReader(doc), 200, 100); err != nil {
			b.Fatal(err)
		}
	}
}
