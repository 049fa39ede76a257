package tesseract

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tallyhq/tally/ocr"
)

// hOCR classes that hold one line of text. Tesseract writes ocr_line for body
// text and the others for text it sees as a caption, heading or text outside
// the columns; a receipt's lines can be any of them.
var lineClasses = map[string]bool{
	"ocr_line":      true,
	"ocr_caption":   true,
	"ocr_header":    true,
	"ocr_textfloat": true,
}

// pixelBox is a box in pixel space (origin top-left, y down), x0 ≤ x1, y0 ≤ y1.
type pixelBox struct{ x0, y0, x1, y1 float64 }

func (b pixelBox) union(o pixelBox) pixelBox {
	return pixelBox{math.Min(b.x0, o.x0), math.Min(b.y0, o.y0), math.Max(b.x1, o.x1), math.Max(b.y1, o.y1)}
}

// hocrChar, hocrWord and hocrLine collect one element's properties while the
// document is read; has* flags mark properties that were present and valid.
type hocrChar struct {
	text    strings.Builder
	box     pixelBox
	hasBox  bool
	conf    float64
	hasConf bool
}

type hocrWord struct {
	text    strings.Builder // the word's own text, used when it has no chars
	chars   []*hocrChar
	box     pixelBox
	hasBox  bool
	conf    float64
	hasConf bool
}

type hocrLine struct {
	words  []*hocrWord
	box    pixelBox
	hasBox bool
	tilt   tilt
}

// tilt is what a line's hOCR says about the direction of its text.
type tilt struct {
	slope      float64 // of the baseline, pixels of y (down) per pixel of x
	textHeight float64 // x_size: ascender to descender, in pixels; 0 if unknown
}

// parseHOCR reads tesseract's hOCR and converts it to lines in the
// normalized coordinates of a width×height image. Words without text and
// lines without words are dropped; boxes are clamped into the image. It never
// panics; input that is not XML, or is cut short, is an error.
func parseHOCR(r io.Reader, width, height int) ([]ocr.Line, error) {
	if width <= 0 || height <= 0 {
		return nil, fmt.Errorf("parse hOCR: image %d×%d has no pixels", width, height)
	}
	dec := xml.NewDecoder(r)
	dec.Strict = false
	dec.AutoClose = xml.HTMLAutoClose
	dec.Entity = xml.HTMLEntity

	// The stack holds what each open element is, so an end tag closes the
	// line, word or letter its start tag opened.
	type kind int
	const (
		other kind = iota
		lineKind
		wordKind
		charKind
	)
	var (
		stack []kind
		line  *hocrLine
		word  *hocrWord
		char  *hocrChar
		out   []ocr.Line
		conv  = converter{width: float64(width), height: float64(height)}
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse hOCR: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			classes := strings.Fields(attr(t, "class"))
			title := attr(t, "title")
			switch {
			case line == nil && hasAny(classes, lineClasses):
				line = &hocrLine{}
				line.box, line.hasBox = conv.box(title, "bbox")
				if p, ok := property(title, "baseline", 2); ok {
					line.tilt.slope = p[0]
				}
				if p, ok := property(title, "x_size", 1); ok && p[0] > 0 {
					line.tilt.textHeight = p[0]
				}
				stack = append(stack, lineKind)
			case line != nil && word == nil && hasClass(classes, "ocrx_word"):
				word = &hocrWord{}
				word.box, word.hasBox = conv.box(title, "bbox")
				word.conf, word.hasConf = confidence(title, "x_wconf")
				stack = append(stack, wordKind)
			case word != nil && char == nil && hasClass(classes, "ocrx_cinfo"):
				char = &hocrChar{}
				char.box, char.hasBox = conv.box(title, "x_bboxes")
				char.conf, char.hasConf = confidence(title, "x_conf")
				stack = append(stack, charKind)
			default:
				stack = append(stack, other)
			}
		case xml.CharData:
			switch {
			case char != nil:
				char.text.Write(t)
			case word != nil:
				word.text.Write(t)
			}
		case xml.EndElement:
			if len(stack) == 0 {
				continue
			}
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			switch k {
			case charKind:
				word.chars = append(word.chars, char)
				char = nil
			case wordKind:
				line.words = append(line.words, word)
				word = nil
			case lineKind:
				if l, ok := conv.line(line); ok {
					out = append(out, l)
				}
				line = nil
			}
		}
	}
	return out, nil
}

// converter turns collected hOCR elements into ocr values for one image.
type converter struct{ width, height float64 }

// line converts a line, or reports false when it has no words with text.
func (c converter) line(hl *hocrLine) (ocr.Line, bool) {
	var (
		words   []ocr.Word
		texts   []string
		box     pixelBox
		confSum float64
	)
	for _, hw := range hl.words {
		w, wordBox, ok := c.word(hw, hl.tilt)
		if !ok {
			continue
		}
		if len(words) == 0 {
			box = wordBox
		} else {
			box = box.union(wordBox)
		}
		words = append(words, w)
		texts = append(texts, w.Text)
		confSum += w.Confidence
	}
	if len(words) == 0 {
		return ocr.Line{}, false
	}
	// Tesseract's line box can leave out a tall mark (a dash, a bar) that
	// it still reports as a word; the line covers all its words.
	if hl.hasBox {
		box = box.union(hl.box)
	}
	conf := confSum / float64(len(words))
	return ocr.Line{
		Text:     strings.Join(texts, " "),
		Geometry: ocr.NewGeometry(c.quad(box, hl.tilt), conf),
		Words:    words,
	}, true
}

// word converts a word and returns its pixel box, or reports false when it
// has no text or no box.
//
// Letters come from the ocrx_cinfo boxes (one letter per rune; a cinfo
// holding several runes has its box split evenly among them). When any
// letter lacks a box, the word's box is split evenly by rune count instead,
// so a word always has exactly one letter per rune of its text.
func (c converter) word(hw *hocrWord, t tilt) (ocr.Word, pixelBox, bool) {
	type piece struct {
		text    string
		box     pixelBox
		conf    float64
		hasConf bool
	}
	var (
		pieces      []piece
		text        strings.Builder
		allBoxed    = true
		charBox     pixelBox
		charConfSum float64
		charConfs   int
	)
	for _, hc := range hw.chars {
		t := strings.TrimSpace(hc.text.String())
		if t == "" {
			continue
		}
		text.WriteString(t)
		pieces = append(pieces, piece{t, hc.box, hc.conf, hc.hasConf})
		if !hc.hasBox {
			allBoxed = false
		} else if len(pieces) == 1 {
			charBox = hc.box
		} else {
			charBox = charBox.union(hc.box)
		}
		if hc.hasConf {
			charConfSum += hc.conf
			charConfs++
		}
	}
	if len(pieces) == 0 {
		// No letters: the word's own text, with any inner whitespace
		// reduced to single spaces.
		text.WriteString(strings.Join(strings.Fields(hw.text.String()), " "))
		allBoxed = false
	}
	if text.Len() == 0 {
		return ocr.Word{}, pixelBox{}, false
	}
	box := hw.box
	switch {
	case hw.hasBox:
	case len(pieces) > 0 && allBoxed:
		box = charBox
	default:
		return ocr.Word{}, pixelBox{}, false
	}
	conf := 0.0
	switch {
	case hw.hasConf:
		conf = hw.conf
	case charConfs > 0:
		conf = charConfSum / float64(charConfs)
	}

	var letters []ocr.Letter
	if allBoxed {
		for _, p := range pieces {
			lc := conf
			if p.hasConf {
				lc = p.conf
			}
			letters = append(letters, c.splitLetters(p.text, p.box, lc)...)
		}
	} else {
		letters = c.splitLetters(text.String(), box, conf)
	}
	return ocr.Word{
		Text:     text.String(),
		Geometry: ocr.NewGeometry(c.quad(box, t), conf),
		Letters:  letters,
	}, box, true
}

// splitLetters gives each rune of text an equal, axis-aligned slice of box.
func (c converter) splitLetters(text string, box pixelBox, conf float64) []ocr.Letter {
	n := utf8.RuneCountInString(text)
	if n == 0 {
		return nil
	}
	step := (box.x1 - box.x0) / float64(n)
	letters := make([]ocr.Letter, 0, n)
	i := 0
	for _, r := range text {
		b := pixelBox{box.x0 + float64(i)*step, box.y0, box.x0 + float64(i+1)*step, box.y1}
		if i == n-1 {
			b.x1 = box.x1 // no rounding gap at the end
		}
		letters = append(letters, ocr.Letter{Text: string(r), Geometry: ocr.NewGeometry(c.quad(b, tilt{}), conf)})
		i++
	}
	return letters
}

// quad is the parallelogram of text in box whose top and bottom edges follow
// the baseline's slope and whose left and right edges are vertical. Tilted
// text fills exactly such a parallelogram, and its axis-aligned box is
// tesseract's box, so the quad spans box without leaving it: its bounding box
// is box and words stay inside their line. A slope too steep for the box
// would leave a sliver, so the band of text is kept at least half the line's
// text height (a quarter of the box when that is unknown); a box too thin for
// that, such as a dash, stays level. Slope 0 gives box itself.
func (c converter) quad(box pixelBox, t tilt) ocr.Quad {
	w, h := box.x1-box.x0, box.y1-box.y0
	minBand := h / 4
	if t.textHeight > 0 {
		minBand = t.textHeight / 2
	}
	maxRise := h - math.Min(minBand, h)
	rise := t.slope * w // how far the baseline goes down (pixel y) across the box
	rise = math.Max(-maxRise, math.Min(maxRise, rise))
	down, up := math.Max(0, rise), math.Max(0, -rise)
	return ocr.Quad{
		TopLeft:     c.point(box.x0, box.y0+up),
		TopRight:    c.point(box.x1, box.y0+down),
		BottomRight: c.point(box.x1, box.y1-up),
		BottomLeft:  c.point(box.x0, box.y1-down),
	}
}

// point converts a pixel position to a normalized point inside 0–1.
func (c converter) point(x, y float64) ocr.Point {
	p := ocr.FromPixel(x, y, int(c.width), int(c.height))
	return ocr.Point{X: clamp01(p.X), Y: clamp01(p.Y)}
}

// box reads a four-number box property (bbox, x_bboxes) from a title,
// ordering its corners and clamping it into the image.
func (c converter) box(title, name string) (pixelBox, bool) {
	p, ok := property(title, name, 4)
	if !ok {
		return pixelBox{}, false
	}
	x0, x1 := math.Min(p[0], p[2]), math.Max(p[0], p[2])
	y0, y1 := math.Min(p[1], p[3]), math.Max(p[1], p[3])
	return pixelBox{
		x0: clampTo(x0, c.width), y0: clampTo(y0, c.height),
		x1: clampTo(x1, c.width), y1: clampTo(y1, c.height),
	}, true
}

// confidence reads a 0–100 confidence property as 0–1.
func confidence(title, name string) (float64, bool) {
	p, ok := property(title, name, 1)
	if !ok {
		return 0, false
	}
	return clamp01(p[0] / 100), true
}

// property finds "name n1 n2 …" among the ';'-separated properties of an
// hOCR title and returns its first n numbers. It reports false when the
// property is absent or its numbers are missing or not finite.
func property(title, name string, n int) ([]float64, bool) {
	for _, part := range strings.Split(title, ";") {
		fields := strings.Fields(part)
		if len(fields) == 0 || fields[0] != name {
			continue
		}
		if len(fields) < n+1 {
			return nil, false
		}
		vals := make([]float64, n)
		for i := range vals {
			v, err := strconv.ParseFloat(fields[i+1], 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, false
			}
			vals[i] = v
		}
		return vals, true
	}
	return nil, false
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func hasClass(classes []string, want string) bool {
	for _, c := range classes {
		if c == want {
			return true
		}
	}
	return false
}

func hasAny(classes []string, want map[string]bool) bool {
	for _, c := range classes {
		if want[c] {
			return true
		}
	}
	return false
}

func clamp01(v float64) float64 { return clampTo(v, 1) }

func clampTo(v, max float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return math.Min(v, max)
}
