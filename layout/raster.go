package layout

import (
	"image"

	"github.com/tallyhq/tally/internal/geom"
)

// raster is a plain w×h 8-bit image with rows stride bytes apart; it hides
// an image.Gray's bounds offset so that (0, 0) is always its top-left.
type raster struct {
	pix          []uint8
	w, h, stride int
}

// view returns g as a raster; nil or empty images give a 0×0 raster.
func view(g *image.Gray) raster {
	if g == nil {
		return raster{}
	}
	b := g.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 || len(g.Pix) == 0 {
		return raster{}
	}
	off := g.PixOffset(b.Min.X, b.Min.Y)
	need := (b.Dy()-1)*g.Stride + b.Dx()
	if off < 0 || off+need > len(g.Pix) {
		return raster{}
	}
	return raster{pix: g.Pix[off:], w: b.Dx(), h: b.Dy(), stride: g.Stride}
}

func newRaster(w, h int) raster {
	return raster{pix: make([]uint8, w*h), w: w, h: h, stride: w}
}

func (r raster) empty() bool       { return r.w <= 0 || r.h <= 0 }
func (r raster) row(y int) []uint8 { return r.pix[y*r.stride : y*r.stride+r.w] }

// shrink averages r down so that its longer side is at most maxSide pixels
// (area averaging, so noise shrinks too). It returns r itself when it is
// already small enough.
func shrink(r raster, maxSide int) raster {
	long := max(r.w, r.h)
	if long <= maxSide || r.empty() {
		return r
	}
	dw := max(1, r.w*maxSide/long)
	dh := max(1, r.h*maxSide/long)
	out := newRaster(dw, dh)
	colOf := make([]int32, r.w) // source column → output column
	for x := range r.w {
		colOf[x] = int32(x * dw / r.w)
	}
	colCount := make([]int, dw)
	for x := range r.w {
		colCount[colOf[x]]++
	}
	sums := make([]int, dw)
	y := 0
	for j := range dh {
		y1 := (j + 1) * r.h / dh
		rows := y1 - y
		clear(sums)
		for ; y < y1; y++ {
			for x, v := range r.row(y) {
				sums[colOf[x]] += int(v)
			}
		}
		o := out.row(j)
		for i := range dw {
			if n := colCount[i] * rows; n > 0 {
				o[i] = uint8((sums[i] + n/2) / n)
			}
		}
	}
	return out
}

// boxBlur smooths r with a (2·radius+1)² box, clamping at the edges; it
// calms sensor noise and table texture before thresholding.
func boxBlur(r raster, radius int) raster {
	if r.empty() || radius <= 0 {
		return r
	}
	tmp := newRaster(r.w, r.h)
	blurLine := func(get func(int) int, put func(int, uint8), n int) {
		win := 2*radius + 1
		sum := 0
		clamp := func(i int) int { return min(max(i, 0), n-1) }
		for i := -radius; i <= radius; i++ {
			sum += get(clamp(i))
		}
		for i := range n {
			put(i, uint8((sum+win/2)/win))
			sum += get(clamp(i+radius+1)) - get(clamp(i-radius))
		}
	}
	for y := range r.h {
		src, dst := r.row(y), tmp.row(y)
		blurLine(func(i int) int { return int(src[i]) }, func(i int, v uint8) { dst[i] = v }, r.w)
	}
	out := newRaster(r.w, r.h)
	for x := range r.w {
		blurLine(func(i int) int { return int(tmp.pix[i*tmp.stride+x]) },
			func(i int, v uint8) { out.pix[i*out.stride+x] = v }, r.h)
	}
	return out
}

// mask is a binary image, one byte per pixel (0 or 1).
type mask struct {
	bits []uint8
	w, h int
}

// morph3 erodes (erode = true) or dilates m with a 3×3 square; pixels
// outside the image count as background.
func morph3(m mask, erode bool) mask {
	out := mask{bits: make([]uint8, len(m.bits)), w: m.w, h: m.h}
	for y := range m.h {
		for x := range m.w {
			hit := erode
			for dy := -1; dy <= 1 && hit == erode; dy++ {
				for dx := -1; dx <= 1; dx++ {
					xx, yy := x+dx, y+dy
					on := xx >= 0 && yy >= 0 && xx < m.w && yy < m.h && m.bits[yy*m.w+xx] == 1
					if erode && !on {
						hit = false
						break
					}
					if !erode && on {
						hit = true
						break
					}
				}
			}
			if hit {
				out.bits[y*m.w+x] = 1
			}
		}
	}
	return out
}

// open removes specks and thin bridges (erode, then dilate).
func open(m mask) mask { return morph3(morph3(m, true), false) }

// components labels the 4-connected regions of set pixels: labels[i] is 0 for
// background, else 1..n; sizes[l] counts the pixels of label l.
func components(m mask) (labels []int32, sizes []int) {
	labels = make([]int32, len(m.bits))
	sizes = []int{0}
	stack := make([]int32, 0, 1024)
	for start, b := range m.bits {
		if b == 0 || labels[start] != 0 {
			continue
		}
		l := int32(len(sizes))
		size := 0
		labels[start] = l
		stack = append(stack[:0], int32(start))
		for len(stack) > 0 {
			i := int(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			size++
			x, y := i%m.w, i/m.w
			try := func(j int) {
				if m.bits[j] == 1 && labels[j] == 0 {
					labels[j] = l
					stack = append(stack, int32(j))
				}
			}
			if x > 0 {
				try(i - 1)
			}
			if x+1 < m.w {
				try(i + 1)
			}
			if y > 0 {
				try(i - m.w)
			}
			if y+1 < m.h {
				try(i + m.w)
			}
		}
		sizes = append(sizes, size)
	}
	return labels, sizes
}

// componentOutlines returns, for every label whose size is at least minSize,
// the corners of its leftmost and rightmost pixel on each row: enough for
// its convex hull without walking its boundary.
func componentOutlines(labels []int32, sizes []int, w, h, minSize int) map[int32][]geom.Pt {
	out := make(map[int32][]geom.Pt)
	first := make([]int32, len(sizes)) // leftmost x on this row, −1 if unseen
	last := make([]int32, len(sizes))
	for i := range first {
		first[i] = -1
	}
	var touched []int32
	for y := range h {
		touched = touched[:0]
		row := labels[y*w : (y+1)*w]
		for x, l := range row {
			if l == 0 || sizes[l] < minSize {
				continue
			}
			if first[l] < 0 {
				first[l] = int32(x)
				touched = append(touched, l)
			}
			last[l] = int32(x)
		}
		fy := float64(y)
		for _, l := range touched {
			x0, x1 := float64(first[l]), float64(last[l]+1)
			out[l] = append(out[l],
				geom.Pt{X: x0, Y: fy}, geom.Pt{X: x1, Y: fy},
				geom.Pt{X: x0, Y: fy + 1}, geom.Pt{X: x1, Y: fy + 1})
			first[l] = -1
		}
	}
	return out
}
