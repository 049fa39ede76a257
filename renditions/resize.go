package renditions

import (
	"image"
	stddraw "image/draw"

	"golang.org/x/image/draw"
)

// Resize scales img down so its long side is maxSide, keeping the aspect
// ratio, with Catmull-Rom filtering: receipts are text, and cheaper filters
// alias thin strokes into noise at a quarter of the size or less (see
// BenchmarkResize for the cost). It never upscales: an image already within
// maxSide, a maxSide ≤ 0 (full size) or an empty or nil image is returned
// as it is. A scaled image is an *image.RGBA with its origin at (0, 0).
func Resize(img image.Image, maxSide int) image.Image {
	if img == nil || maxSide <= 0 {
		return img
	}
	b := img.Bounds()
	if b.Empty() || longSide(b) <= maxSide {
		return img
	}
	w, h := fit(b.Dx(), b.Dy(), maxSide)
	return scale(img, w, h)
}

// scale resizes img to w×h.
func scale(img image.Image, w, h int) *image.RGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Rect, img, b, draw.Src, nil)
	return dst
}

// fit returns the dimensions of a w×h image scaled to a long side of
// maxSide, rounding the short side and keeping it at least 1 pixel.
func fit(w, h, maxSide int) (int, int) {
	if w >= h {
		return maxSide, max(1, (h*maxSide+w/2)/w)
	}
	return max(1, (w*maxSide+h/2)/h), maxSide
}

// packedRGBA returns img as an *image.RGBA with its origin at (0, 0) and no
// padding between rows, the layout the WebAssembly encoders read directly
// (they ignore Stride and Rect.Min). It copies only when img is not already
// laid out that way, such as a receipt crop made with SubImage.
func packedRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	if m, ok := img.(*image.RGBA); ok && m.Rect.Min == (image.Point{}) && m.Stride == 4*b.Dx() {
		return m
	}
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	stddraw.Draw(dst, dst.Rect, img, b.Min, stddraw.Src)
	return dst
}
