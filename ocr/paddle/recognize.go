package paddle

import (
	"image"
	"math"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/tallyhq/tally/internal/geom"
	"github.com/tallyhq/tally/internal/onnxrt"
)

// Recognizer and angle classifier input, as the PP-OCR models were trained.
const (
	recHeight     = 48  // rec_image_shape 3×48×W
	recMinWidth   = 320 // PaddleOCR pads every batch to at least 48×320
	recDropScore  = 0.5 // lines read with less confidence are dropped
	clsWidth      = 192 // cls_image_shape 3×48×192
	clsThreshold  = 0.9 // a crop is turned when "180" scores above this
	tallRatio     = 1.5 // a box this much taller than wide is read rotated
	maxCropAspect = 400 // wider crops are cut (a 48×19,200 input at most)
)

// crop is a detected box prepared for the recognizer: the box with its
// corners in reading order (turned when the text runs vertically or upside
// down) and its size along those corners.
type crop struct {
	box  box
	w, h float64 // lengths of the top and left edges, the longer of each pair
}

func newCrop(b box) crop {
	c := crop{box: b}
	c.measure()
	if c.h/math.Max(c.w, 1) >= tallRatio {
		c.turn(1)
	}
	return c
}

func (c *crop) measure() {
	b := c.box
	c.w = math.Max(b[0].Dist(b[1]), b[3].Dist(b[2]))
	c.h = math.Max(b[0].Dist(b[3]), b[1].Dist(b[2]))
}

// turn rotates the reading direction by quarter turns clockwise: after
// turn(1) the old top-right corner reads as the top-left.
func (c *crop) turn(quarters int) {
	var b box
	for i := range 4 {
		b[i] = c.box[(i+quarters)%4]
	}
	c.box = b
	c.measure()
}

// ratio is the crop's width over its height.
func (c crop) ratio() float64 { return c.w / math.Max(c.h, 1) }

// at maps a position (u along the top edge, v down the left edge, both in
// crop pixels) to source pixels.
func (c crop) at(u, v float64) geom.Pt {
	fu, fv := u/math.Max(c.w, 1), v/math.Max(c.h, 1)
	top := geom.Lerp(c.box[0], c.box[1], fu)
	bottom := geom.Lerp(c.box[3], c.box[2], fu)
	return geom.Lerp(top, bottom, fv)
}

// sample writes the crop scaled to outW×recHeight into dst (row-major, one
// channel, stride dstW), normalized to −1…1, by bilinear sampling of g:
// cutting and resizing in one pass.
func (c crop) sample(g *image.Gray, dst []float32, dstW, outW int) {
	b := g.Bounds()
	sw, sh := b.Dx(), b.Dy()
	su, sv := c.w/float64(outW), c.h/recHeight
	for y := range recHeight {
		v := (float64(y) + 0.5) * sv
		for x := range outW {
			p := c.at((float64(x)+0.5)*su, v)
			dst[y*dstW+x] = bilinear(g.Pix, g.Stride, sw, sh, p.X-0.5, p.Y-0.5)/127.5 - 1
		}
	}
}

// bilinear interpolates pix at (x, y), repeating the border outside.
func bilinear(pix []uint8, stride, w, h int, x, y float64) float32 {
	x = clamp(x, 0, float64(w-1))
	y = clamp(y, 0, float64(h-1))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	fx, fy := float32(x-float64(x0)), float32(y-float64(y0))
	a := float32(pix[y0*stride+x0]) + (float32(pix[y0*stride+x1])-float32(pix[y0*stride+x0]))*fx
	b := float32(pix[y1*stride+x0]) + (float32(pix[y1*stride+x1])-float32(pix[y1*stride+x0]))*fx
	return a + (b-a)*fy
}

// batchInput stacks crops into one N×3×48×W tensor, each scaled to height 48
// keeping its aspect ratio and padded with zeros on the right; widths[i] is
// crop i's scaled width. W is at least minWidth (PaddleOCR pads to 320)
// and, when maxWidth > 0, at most maxWidth.
func batchInput(g *image.Gray, crops []crop, minWidth, maxWidth int) (onnxrt.Tensor, []int) {
	maxRatio := 0.0
	for _, c := range crops {
		maxRatio = math.Max(maxRatio, math.Min(c.ratio(), maxCropAspect))
	}
	width := max(minWidth, int(math.Ceil(recHeight*maxRatio)), 8)
	if maxWidth > 0 {
		width = min(width, maxWidth)
	}
	width = (width + 7) / 8 * 8 // the recognizer's stride
	plane := recHeight * width
	data := make([]float32, len(crops)*3*plane)
	widths := make([]int, len(crops))
	for i, c := range crops {
		w := max(1, min(width, int(math.Ceil(recHeight*c.ratio()))))
		widths[i] = w
		first := data[i*3*plane : i*3*plane+plane]
		c.sample(g, first, width, w)
		copy(data[i*3*plane+plane:], first)
		copy(data[i*3*plane+2*plane:], first)
	}
	return onnxrt.Tensor{Shape: []int64{int64(len(crops)), 3, recHeight, int64(width)}, Data: data}, widths
}

// glyph is one character the recognizer emitted: its dictionary index, the
// frames (time steps) it spans and its peak probability.
type glyph struct {
	class      int
	start, end int // first and last frame, inclusive
	prob       float32
}

// ctcDecode is greedy CTC decoding of one crop's T×classes probabilities:
// the best class per frame, repeats merged, blanks (class 0) dropped. score
// is the mean peak probability of the kept glyphs.
func ctcDecode(probs []float32, frames, classes int) (glyphs []glyph, score float64) {
	prev := -1
	for t := range frames {
		row := probs[t*classes : (t+1)*classes]
		best, bestP := 0, row[0]
		for k, p := range row[1:] {
			if p > bestP {
				best, bestP = k+1, p
			}
		}
		switch {
		case best == 0:
		case best == prev:
			g := &glyphs[len(glyphs)-1]
			g.end = t
			g.prob = max(g.prob, bestP)
		default:
			glyphs = append(glyphs, glyph{class: best, start: t, end: t, prob: bestP})
		}
		prev = best
	}
	if len(glyphs) == 0 {
		return nil, 0
	}
	for _, g := range glyphs {
		score += float64(g.prob)
	}
	return glyphs, score / float64(len(glyphs))
}

// placedGlyph is a glyph with its horizontal extent along the crop, in crop
// pixels.
type placedGlyph struct {
	text        string
	left, right float64
	mid         float64 // centre of its frames, where the model saw it
	prob        float32
	space       bool
}

// placeGlyphs gives every glyph an extent along the crop: centred on its
// frames, at most one character pitch wide, never overlapping its
// neighbours. frameWidth is one frame in crop pixels.
func placeGlyphs(glyphs []glyph, dict []string, frameWidth, cropWidth float64) []placedGlyph {
	centers := make([]float64, len(glyphs))
	for i, g := range glyphs {
		centers[i] = float64(g.start+g.end+1) / 2 * frameWidth
	}
	pitch := charPitch(glyphs, dict, centers)
	if pitch == 0 {
		pitch = 3 * frameWidth
	}
	out := make([]placedGlyph, len(glyphs))
	for i, g := range glyphs {
		text := foldWidth(dict[g.class])
		left, right := centers[i]-pitch/2, centers[i]+pitch/2
		if i > 0 {
			left = math.Max(left, (centers[i-1]+centers[i])/2)
		}
		if i+1 < len(glyphs) {
			right = math.Min(right, (centers[i]+centers[i+1])/2)
		}
		out[i] = placedGlyph{
			text: text, prob: g.prob, space: strings.TrimSpace(text) == "", mid: centers[i],
			left: clamp(left, 0, cropWidth), right: clamp(right, 0, cropWidth),
		}
	}
	return out
}

// charPitch is the median distance between the centres of neighbouring
// non-space glyphs: the width of one character on this line.
func charPitch(glyphs []glyph, dict []string, centers []float64) float64 {
	var gaps []float64
	for i := 1; i < len(glyphs); i++ {
		if strings.TrimSpace(dict[glyphs[i-1].class]) != "" && strings.TrimSpace(dict[glyphs[i].class]) != "" {
			gaps = append(gaps, centers[i]-centers[i-1])
		}
	}
	if len(gaps) == 0 {
		return 0
	}
	sort.Float64s(gaps)
	return gaps[len(gaps)/2]
}

// splitWords groups placed glyphs into words: at every space glyph, and,
// where the model emitted none, between neighbours for which split says so
// (given the line's character pitch, the median distance between
// neighbouring letters' centres).
func splitWords(gs []placedGlyph, split func(prev, next placedGlyph, pitch float64) bool) [][]placedGlyph {
	var pitches []float64
	for i := 1; i < len(gs); i++ {
		if !gs[i].space && !gs[i-1].space {
			pitches = append(pitches, gs[i].mid-gs[i-1].mid)
		}
	}
	pitch := 0.0
	if len(pitches) > 0 {
		slices.Sort(pitches)
		pitch = pitches[len(pitches)/2]
	}
	var words [][]placedGlyph
	var cur []placedGlyph
	for i, g := range gs {
		if g.space {
			if len(cur) > 0 {
				words = append(words, cur)
			}
			cur = nil
			continue
		}
		if len(cur) > 0 && pitch > 0 && split != nil && !glued(gs, i) && split(gs[i-1], g, pitch) {
			words = append(words, cur)
			cur = nil
		}
		cur = append(cur, g)
	}
	if len(cur) > 0 {
		words = append(words, cur)
	}
	return words
}

// blankColumns marks the columns of one crop's recognizer input (values
// −1…1, dark text on light paper, width columns of a plane with the given
// stride) that hold no ink: at most one pixel darker than halfway between
// the crop's paper and ink (a speck of noise). Every row counts, since a
// tight box puts the bar of a T on its first rows. A crop without contrast
// has no blank columns.
func blankColumns(plane []float32, stride, width int) []bool {
	var hist [256]int
	for y := range recHeight {
		for _, v := range plane[y*stride : y*stride+width] {
			hist[int(clamp(float64(v+1)*127.5, 0, 255))]++
		}
	}
	lo, hi := percentile(&hist, 0.05), percentile(&hist, 0.95)
	blank := make([]bool, width)
	if hi-lo < 32 {
		return blank
	}
	thr := float32(lo+hi)/255 - 1 // halfway, back in −1…1
	for x := range width {
		dark := 0
		for y := range recHeight {
			if plane[y*stride+x] < thr {
				dark++
			}
		}
		blank[x] = dark <= 1
	}
	return blank
}

// percentile is the histogram bin below which fraction q of the values lie.
func percentile(hist *[256]int, q float64) int {
	total := 0
	for _, n := range hist {
		total += n
	}
	want, seen := int(q*float64(total)), 0
	for i, n := range hist {
		seen += n
		if seen > want {
			return i
		}
	}
	return 255
}

// longestRun is the longest run of true in blank[from:to].
func longestRun(blank []bool, from, to int) int {
	from, to = max(0, from), min(len(blank), to)
	best, run := 0, 0
	for x := from; x < to; x++ {
		if blank[x] {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// foldWidth turns the fullwidth forms of ASCII (U+FF01–U+FF5E) and the
// ideographic space into ASCII: the Chinese+English dictionary holds both
// "(" and "（", and reads either for the same printed bracket, while search,
// extraction and people expect the ASCII one.
func foldWidth(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size != len(s) {
		return s
	}
	switch {
	case r >= 0xFF01 && r <= 0xFF5E:
		return string(r - 0xFEE0)
	case r == 0x3000:
		return " "
	}
	return s
}

// glued reports neighbours that must stay one word however much paper lies
// between them: a digit and a separator that has a digit on its other side
// (9.00, 1,234, 8:13, 25/12, 14-10), which fixed-pitch fonts print with wide
// blanks around the narrow separator.
func glued(gs []placedGlyph, i int) bool {
	digit := func(k int) bool {
		if k < 0 || k >= len(gs) {
			return false
		}
		r, _ := utf8.DecodeRuneInString(gs[k].text)
		return r >= '0' && r <= '9'
	}
	sep := func(k int) bool {
		return k >= 0 && k < len(gs) && strings.Contains(".,:/-", gs[k].text) && gs[k].text != ""
	}
	// the pair is gs[i-1], gs[i]
	return (sep(i-1) && digit(i) && digit(i-2)) || (sep(i) && digit(i-1) && digit(i+1))
}
