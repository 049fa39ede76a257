package renditions

import (
	"image"
	"image/color"
	"math/rand/v2"
)

// photoLike draws a deterministic w×h image with what makes receipt photos
// costly to compress: a lit gradient background, sensor noise, and rows of
// dark text-like strokes on a paper-coloured band.
func photoLike(w, h int) *image.RGBA {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	paper := image.Rect(w/6, h/12, w-w/6, h-h/12)
	for y := range h {
		for x := range w {
			// Table-top background: a diagonal brown gradient.
			r := 90 + 60*x/w + 20*y/h
			g := 60 + 40*x/w + 10*y/h
			b := 40 + 20*y/h
			if (image.Point{x, y}).In(paper) {
				r, g, b = 235-15*y/h, 232-15*y/h, 220-20*y/h
				// Text rows: 60% of each 24 px line, broken into "words".
				row := (y - paper.Min.Y) % 24
				word := ((x - paper.Min.X) / 9) % 7
				if row >= 6 && row < 20 && word < 5 && (x*7+y*3)%5 != 0 {
					r, g, b = 40, 40, 50
				}
			}
			n := rng.IntN(17) - 8
			img.SetRGBA(x, y, color.RGBA{clamp8(r + n), clamp8(g + n), clamp8(b + n), 255})
		}
	}
	return img
}

func clamp8(v int) uint8 { return uint8(max(0, min(255, v))) }
