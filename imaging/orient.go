package imaging

import (
	"image"
	"image/color"
)

// Applying an EXIF orientation. Orientation o describes how the stored
// pixels must be transformed for display (EXIF 2.32, tag 0x0112):
//
//	1 as stored            5 transpose (mirror + rotate 270° CW)
//	2 mirror horizontally  6 rotate 90° clockwise
//	3 rotate 180°          7 transverse (mirror + rotate 90° CW)
//	4 mirror vertically    8 rotate 90° counter-clockwise
//
// For 5–8 width and height swap. Every orientation is one mapping from a
// displayed pixel (x, y) to a stored pixel, see sourceStart.

// orient returns img as it should be displayed under EXIF orientation o:
// img itself for 1 (or a value outside 1–8), otherwise a new image.
func orient(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	return transform(img, o)
}

// swapsAxes reports whether orientation o exchanges width and height.
func swapsAxes(o int) bool { return o >= 5 && o <= 8 }

// orientedSize returns the displayed size of a w×h stored image.
func orientedSize(w, h, o int) (int, int) {
	if swapsAxes(o) {
		return h, w
	}
	return w, h
}

// sourceStart describes, for displayed row y of a w×h stored image, where
// the row's pixels come from: displayed pixel x is stored pixel
// (sx0 + x*dx, sy0 + x*dy). This is the one place the eight cases live.
func sourceStart(o, y, w, h int) (sx0, sy0, dx, dy int) {
	switch o {
	case 2:
		return w - 1, y, -1, 0
	case 3:
		return w - 1, h - 1 - y, -1, 0
	case 4:
		return 0, h - 1 - y, 1, 0
	case 5:
		return y, 0, 0, 1
	case 6:
		return y, h - 1, 0, -1
	case 7:
		return w - 1 - y, h - 1, 0, -1
	case 8:
		return w - 1 - y, 0, 0, 1
	}
	return 0, y, 1, 0
}

// sourceWalk is sourceStart in bytes, for a plane with the given stride and
// bytes per pixel: displayed pixel x of row y is at byte base + x*step.
func sourceWalk(o, y, w, h, stride, bpp int) (base, step int) {
	sx0, sy0, dx, dy := sourceStart(o, y, w, h)
	return sy0*stride + sx0*bpp, dy*stride + dx*bpp
}

// storedPixel maps displayed pixel (x, y) to the stored pixel of a w×h
// image under orientation o.
func storedPixel(o, x, y, w, h int) (int, int) {
	sx0, sy0, dx, dy := sourceStart(o, y, w, h)
	return sx0 + x*dx, sy0 + x*dy
}

// tile is the block size for transposing orientations: reading a stored
// column is a walk across rows, and doing it tile by tile keeps the rows
// being read in cache.
const tile = 32

// transformPlane writes the stored w×h plane src, transformed by
// orientation o, into dst (whose size is orientedSize(w, h, o)).
func transformPlane(dst []byte, dstStride int, src []byte, srcStride, w, h, bpp, o int) {
	if w <= 0 || h <= 0 {
		return
	}
	dw, dh := orientedSize(w, h, o)
	band := dw // columns per pass: whole rows unless transposing
	if swapsAxes(o) {
		band = tile
	}
	for x0 := 0; x0 < dw; x0 += band {
		x1 := min(x0+band, dw)
		for y := range dh {
			base, step := sourceWalk(o, y, w, h, srcStride, bpp)
			out := dst[y*dstStride+x0*bpp : y*dstStride+x1*bpp]
			base += x0 * step
			switch {
			case step == bpp:
				copy(out, src[base:base+len(out)])
			case bpp == 1:
				for x := range out {
					out[x] = src[base+x*step]
				}
			default:
				for x := 0; x < len(out); x += bpp {
					copy(out[x:x+bpp], src[base:base+bpp])
					base += step
				}
			}
		}
	}
}

// transform returns a new image: img under orientation o (1 gives a deep
// copy). It keeps the pixel type for the types decoders produce, and falls
// back to RGBA64 for anything else.
func transform(img image.Image, o int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := orientedSize(w, h, o)
	r := image.Rect(0, 0, dw, dh)
	switch src := img.(type) {
	case *image.Gray:
		dst := image.NewGray(r)
		transformPlane(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, 1, o)
		return dst
	case *image.Alpha:
		dst := image.NewAlpha(r)
		transformPlane(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, 1, o)
		return dst
	case *image.Gray16:
		dst := image.NewGray16(r)
		transformPlane(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, 2, o)
		return dst
	case *image.RGBA:
		dst := image.NewRGBA(r)
		transformPlane(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, 4, o)
		return dst
	case *image.NRGBA:
		dst := image.NewNRGBA(r)
		transformPlane(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, 4, o)
		return dst
	case *image.CMYK:
		dst := image.NewCMYK(r)
		transformPlane(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, 4, o)
		return dst
	case *image.RGBA64:
		dst := image.NewRGBA64(r)
		transformPlane(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, 8, o)
		return dst
	case *image.NRGBA64:
		dst := image.NewNRGBA64(r)
		transformPlane(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, 8, o)
		return dst
	case *image.Paletted:
		dst := image.NewPaletted(r, append(color.Palette(nil), src.Palette...))
		transformPlane(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, 1, o)
		return dst
	case *image.YCbCr:
		return transformYCbCr(src, o)
	}
	return transformGeneric(img, o)
}

// transposedRatio is the chroma subsampling of a YCbCr image after its axes
// swap; ok is false for ratios with no swapped counterpart.
func transposedRatio(s image.YCbCrSubsampleRatio) (image.YCbCrSubsampleRatio, bool) {
	switch s {
	case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420:
		return s, true
	case image.YCbCrSubsampleRatio422:
		return image.YCbCrSubsampleRatio440, true
	case image.YCbCrSubsampleRatio440:
		return image.YCbCrSubsampleRatio422, true
	}
	return s, false
}

// chromaFactors returns the horizontal and vertical chroma subsampling.
func chromaFactors(s image.YCbCrSubsampleRatio) (int, int) {
	switch s {
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 1, 1
}

// transformYCbCr keeps JPEG's planar layout: a portrait phone photo stays
// at 1.5 bytes per pixel instead of growing to 4. When the chroma planes
// cover whole pixel blocks (even sizes for 4:2:0) each plane is transformed
// on its own, which is exact; otherwise chroma is resampled per pixel into
// 4:4:4, exactly as YCbCr.At reads it.
func transformYCbCr(src *image.YCbCr, o int) image.Image {
	b := src.Rect
	w, h := b.Dx(), b.Dy()
	dw, dh := orientedSize(w, h, o)
	r := image.Rect(0, 0, dw, dh)
	fx, fy := chromaFactors(src.SubsampleRatio)
	ratio, ratioOK := src.SubsampleRatio, true
	if swapsAxes(o) {
		ratio, ratioOK = transposedRatio(src.SubsampleRatio)
	}
	aligned := ratioOK && b.Min.X%fx == 0 && b.Min.Y%fy == 0 && w%fx == 0 && h%fy == 0
	if !aligned {
		ratio = image.YCbCrSubsampleRatio444
	}
	dst := image.NewYCbCr(r, ratio)
	y0 := src.YOffset(b.Min.X, b.Min.Y)
	transformPlane(dst.Y, dst.YStride, src.Y[y0:], src.YStride, w, h, 1, o)
	if aligned {
		c0 := src.COffset(b.Min.X, b.Min.Y)
		cw, ch := w/fx, h/fy
		transformPlane(dst.Cb, dst.CStride, src.Cb[c0:], src.CStride, cw, ch, 1, o)
		transformPlane(dst.Cr, dst.CStride, src.Cr[c0:], src.CStride, cw, ch, 1, o)
		return dst
	}
	// Chroma offsets of every stored column and row (as YCbCr.COffset
	// computes them), so the per-pixel work is two lookups.
	column := make([]int, w)
	for x := range column {
		column[x] = (b.Min.X+x)/fx - b.Min.X/fx
	}
	row := make([]int, h)
	for y := range row {
		row[y] = ((b.Min.Y+y)/fy - b.Min.Y/fy) * src.CStride
	}
	for y := range dh {
		sx, sy, dx, dy := sourceStart(o, y, w, h)
		cb := dst.Cb[y*dst.CStride : y*dst.CStride+dw]
		cr := dst.Cr[y*dst.CStride : y*dst.CStride+dw]
		for x := range cb {
			c := row[sy] + column[sx]
			cb[x], cr[x] = src.Cb[c], src.Cr[c]
			sx, sy = sx+dx, sy+dy
		}
	}
	return dst
}

// transformGeneric handles any other image type through RGBA64, which
// holds every standard colour exactly.
func transformGeneric(img image.Image, o int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := orientedSize(w, h, o)
	dst := image.NewRGBA64(image.Rect(0, 0, dw, dh))
	src64, fast := img.(image.RGBA64Image)
	for y := range dh {
		for x := range dw {
			sx, sy := storedPixel(o, x, y, w, h)
			sx, sy = sx+b.Min.X, sy+b.Min.Y
			if fast {
				dst.SetRGBA64(x, y, src64.RGBA64At(sx, sy))
			} else {
				dst.Set(x, y, img.At(sx, sy))
			}
		}
	}
	return dst
}
