package paddle

import (
	"image"
	"math"
	"slices"
	"testing"

	"github.com/tallyhq/tally/internal/geom"
)

func TestDetSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		w, h, side, pixels int
		dw, dh             int
	}{
		{463, 1000, 960, 0, 448, 960},          // shrunk to 960, sides rounded to 32
		{463, 1000, 0, 0, 448, 992},            // no limit: only rounded
		{1, 1, 960, 0, 32, 32},                 // never below one stride
		{100, 20000, 960, 0, 32, 960},          // a very tall receipt
		{1000, 20000, 0, 2_000_000, 320, 6336}, // the area bound wins
		{2480, 3508, 960, 2_000_000, 672, 960},
	}
	for _, tt := range tests {
		dw, dh := detSize(tt.w, tt.h, tt.side, tt.pixels)
		if dw != tt.dw || dh != tt.dh {
			t.Errorf("detSize(%d, %d, %d, %d) = %d×%d, want %d×%d", tt.w, tt.h, tt.side, tt.pixels, dw, dh, tt.dw, tt.dh)
		}
		if dw%detStride != 0 || dh%detStride != 0 {
			t.Errorf("detSize(%d, %d) = %d×%d: not multiples of %d", tt.w, tt.h, dw, dh, detStride)
		}
	}
}

// probs builds a frames×classes probability matrix whose best class per
// frame is best[t].
func probs(best []int, classes int) []float32 {
	p := make([]float32, len(best)*classes)
	for t, b := range best {
		for k := range classes {
			p[t*classes+k] = 0.01
		}
		p[t*classes+b] = 0.9
	}
	return p
}

func TestCTCDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		best  []int
		want  []glyph
		score float64
	}{
		{[]int{0, 0, 0}, nil, 0},
		// repeats merge; a blank between equal classes separates them
		{[]int{1, 1, 0, 2, 0, 2, 2}, []glyph{{1, 0, 1, 0.9}, {2, 3, 3, 0.9}, {2, 5, 6, 0.9}}, 0.9},
		{[]int{3, 0}, []glyph{{3, 0, 0, 0.9}}, 0.9},
	}
	for _, tt := range tests {
		got, score := ctcDecode(probs(tt.best, 4), len(tt.best), 4)
		if !slices.Equal(got, tt.want) || math.Abs(score-tt.score) > 1e-6 {
			t.Errorf("ctcDecode(%v) = %v %.2f, want %v %.2f", tt.best, got, score, tt.want, tt.score)
		}
	}
}

func TestSplitWords(t *testing.T) {
	t.Parallel()
	dict := []string{"", "A", "B", " ", "1", "."}
	// frames of 4 crop pixels; glyph centres every 3 frames (12 px)
	mk := func(classes ...int) []glyph {
		var gs []glyph
		for i, c := range classes {
			gs = append(gs, glyph{class: c, start: 3 * i, end: 3 * i, prob: 0.9})
		}
		return gs
	}
	text := func(words [][]placedGlyph) []string {
		var out []string
		for _, w := range words {
			s := ""
			for _, g := range w {
				s += g.text
			}
			out = append(out, s)
		}
		return out
	}
	never := func(placedGlyph, placedGlyph, float64) bool { return false }
	at := func(x float64) func(p, n placedGlyph, pitch float64) bool {
		return func(p, n placedGlyph, pitch float64) bool { return p.mid < x && n.mid > x }
	}
	tests := []struct {
		name    string
		classes []int
		split   func(placedGlyph, placedGlyph, float64) bool
		want    []string
	}{
		{"at spaces", []int{1, 2, 3, 1, 2}, never, []string{"AB", "AB"}},
		{"leading and double spaces", []int{3, 1, 3, 3, 2}, never, []string{"A", "B"}},
		{"at a gap", []int{1, 2, 1, 2}, at(20), []string{"AB", "AB"}},
		{"nothing to split", []int{1, 4, 5, 4}, nil, []string{"A1.1"}},
		{"only spaces", []int{3, 3}, never, nil},
	}
	for _, tt := range tests {
		placed := placeGlyphs(mk(tt.classes...), dict, 4, 400)
		if got := text(splitWords(placed, tt.split)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: words %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPlaceGlyphs(t *testing.T) {
	t.Parallel()
	dict := []string{"", "A", "B"}
	gs := []glyph{{1, 0, 1, 0.9}, {2, 3, 3, 0.8}, {1, 6, 7, 0.7}}
	placed := placeGlyphs(gs, dict, 4, 32)
	for i, p := range placed {
		if p.left >= p.right || p.left < 0 || p.right > 32 {
			t.Errorf("glyph %d spans %.1f–%.1f", i, p.left, p.right)
		}
		if p.mid < p.left || p.mid > p.right {
			t.Errorf("glyph %d centred at %.1f outside %.1f–%.1f", i, p.mid, p.left, p.right)
		}
		if i > 0 && p.left < placed[i-1].right {
			t.Errorf("glyph %d overlaps glyph %d", i, i-1)
		}
	}
}

func TestBlankColumns(t *testing.T) {
	t.Parallel()
	const w = 40
	plane := make([]float32, recHeight*w)
	for i := range plane {
		plane[i] = 1 // paper
	}
	for y := 10; y < 38; y++ { // ink in columns 5–9 and 25–29
		for x := range 5 {
			plane[y*w+5+x], plane[y*w+25+x] = -1, -1
		}
	}
	blank := blankColumns(plane, w, w)
	if got := longestRun(blank, 0, w); got != 15 {
		t.Errorf("longest blank run %d, want 15 (columns 10–24)", got)
	}
	if got := longestRun(blank, 5, 10); got != 0 {
		t.Errorf("inked columns counted blank: run %d", got)
	}
	flat := make([]float32, recHeight*w)
	if got := longestRun(blankColumns(flat, w, w), 0, w); got != 0 {
		t.Errorf("a crop without contrast has blank runs of %d", got)
	}
}

func TestBoxes(t *testing.T) {
	t.Parallel()
	// Two text kernels on a 64×32 map: a bar and a speck below the
	// minimum size. The bar comes back grown by the unclip distance and
	// scaled to a source image twice as large.
	const pw, ph = 64, 32
	prob := make([]float32, pw*ph)
	for y := 10; y < 16; y++ {
		for x := 8; x < 48; x++ {
			prob[y*pw+x] = 0.9
		}
	}
	prob[25*pw+55] = 0.9
	got := boxes(prob, pw, ph, 2*pw, 2*ph)
	if len(got) != 1 {
		t.Fatalf("%d boxes, want 1: %v", len(got), got)
	}
	b := got[0]
	// kernel 39×5 (pixel centres), unclip distance 39·5·1.5/(2·44) ≈ 3.3
	w, h := b[0].Dist(b[1])/2, b[0].Dist(b[3])/2
	if math.Abs(w-45.6) > 1.5 || math.Abs(h-11.6) > 1.5 {
		t.Errorf("box %v is %.1f×%.1f in the map, want about 45.6×11.6", b, w, h)
	}
	if b[0].X > b[1].X || b[0].Y > b[3].Y {
		t.Errorf("corners out of reading order: %v", b)
	}
	if got := boxes(make([]float32, pw*ph), pw, ph, pw, ph); len(got) != 0 {
		t.Errorf("an empty map gave %d boxes", len(got))
	}
}

func TestSortBoxes(t *testing.T) {
	t.Parallel()
	at := func(x, y float64) box {
		return box{{X: x, Y: y}, {X: x + 10, Y: y}, {X: x + 10, Y: y + 5}, {X: x, Y: y + 5}}
	}
	bs := []box{at(50, 104), at(0, 100), at(0, 40), at(60, 41)}
	sortBoxes(bs)
	want := []geom.Pt{{X: 0, Y: 40}, {X: 60, Y: 41}, {X: 0, Y: 100}, {X: 50, Y: 104}}
	for i, b := range bs {
		if b[0] != want[i] {
			t.Errorf("box %d starts at %v, want %v", i, b[0], want[i])
		}
	}
}

func TestCropTurn(t *testing.T) {
	t.Parallel()
	// A box three times taller than wide reads rotated: its top edge is
	// then the box's right side.
	tall := box{{X: 10, Y: 0}, {X: 20, Y: 0}, {X: 20, Y: 30}, {X: 10, Y: 30}}
	c := newCrop(tall)
	if c.w != 30 || c.h != 10 || c.box[0] != tall[1] {
		t.Errorf("tall crop %+v: want 30 wide, 10 high, starting at the top-right corner", c)
	}
	wide := newCrop(box{{X: 0, Y: 0}, {X: 30, Y: 0}, {X: 30, Y: 10}, {X: 0, Y: 10}})
	if p := wide.at(15, 5); p != (geom.Pt{X: 15, Y: 5}) {
		t.Errorf("centre of an upright crop maps to %v", p)
	}
	wide.turn(2)
	if p := wide.at(0, 0); p != (geom.Pt{X: 30, Y: 10}) {
		t.Errorf("an upside-down crop starts at %v, want the bottom-right corner", p)
	}
}

func TestResizeGray(t *testing.T) {
	t.Parallel()
	g := image.NewGray(image.Rect(0, 0, 4, 2))
	copy(g.Pix, []uint8{0, 0, 255, 255, 0, 0, 255, 255})
	var out []float32
	resizeGray(g, 2, 1, func(i int, v float32) { out = append(out, v) })
	if !slices.Equal(out, []float32{0, 255}) {
		t.Errorf("halved %v, want [0 255]", out)
	}
}

func TestFoldWidth(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"（": "(", "）": ")", "：": ":", "Ａ": "A", "\u3000": " ", "a": "a", "物": "物", "。": "。"} {
		if got := foldWidth(in); got != want {
			t.Errorf("foldWidth(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGlued(t *testing.T) {
	t.Parallel()
	mk := func(s string) []placedGlyph {
		var gs []placedGlyph
		for _, r := range s {
			gs = append(gs, placedGlyph{text: string(r)})
		}
		return gs
	}
	tests := []struct {
		text string
		at   int // the pair text[at-1], text[at]
		want bool
	}{
		{"9.00", 1, true}, {"9.00", 2, true}, {"8:13", 2, true}, {"25/12", 3, true}, {"14-10", 2, true},
		{"90", 1, false}, {"A.B", 1, false}, {"TOTAL.", 5, false}, {"RM9", 2, false},
	}
	for _, tt := range tests {
		if got := glued(mk(tt.text), tt.at); got != tt.want {
			t.Errorf("glued(%q, %d) = %v, want %v", tt.text, tt.at, got, tt.want)
		}
	}
}
