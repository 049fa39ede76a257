package imaging

import (
	"image"
)

// Gray returns the luminance of img as a new 8-bit grey image with the same
// bounds, for OCR and layout analysis. It never shares memory with img.
//
// Luminance uses the weights of color.GrayModel (BT.601). Transparent
// pixels are composited over white, not black as color.GrayModel does: a
// screenshot with a transparent background then reads as dark text on
// white instead of vanishing. Opaque pixels match color.GrayModel exactly
// (the YCbCr fast path uses the Y plane as is, within ±1 of it).
func Gray(img image.Image) *image.Gray {
	b := img.Bounds()
	dst := image.NewGray(b)
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return dst
	}
	switch src := img.(type) {
	case *image.Gray:
		for y := range h {
			copy(dst.Pix[y*dst.Stride:y*dst.Stride+w], src.Pix[y*src.Stride:])
		}
	case *image.YCbCr:
		y0 := src.YOffset(b.Min.X, b.Min.Y)
		for y := range h {
			copy(dst.Pix[y*dst.Stride:y*dst.Stride+w], src.Y[y0+y*src.YStride:])
		}
	case *image.RGBA:
		for y := range h {
			in := src.Pix[y*src.Stride : y*src.Stride+4*w]
			out := dst.Pix[y*dst.Stride : y*dst.Stride+w]
			for x := range out {
				p := in[4*x : 4*x+4 : 4*x+4]
				out[x] = luminance(uint32(p[0])*0x101, uint32(p[1])*0x101, uint32(p[2])*0x101, uint32(p[3])*0x101)
			}
		}
	case *image.NRGBA:
		for y := range h {
			in := src.Pix[y*src.Stride : y*src.Stride+4*w]
			out := dst.Pix[y*dst.Stride : y*dst.Stride+w]
			for x := range out {
				p := in[4*x : 4*x+4 : 4*x+4]
				r, g, bl, a := uint32(p[0])*0x101, uint32(p[1])*0x101, uint32(p[2])*0x101, uint32(p[3])*0x101
				if a != 0xffff { // premultiply, as color.NRGBA.RGBA does
					r, g, bl = r*a/0xffff, g*a/0xffff, bl*a/0xffff
				}
				out[x] = luminance(r, g, bl, a)
			}
		}
	case *image.Gray16:
		for y := range h {
			in := src.Pix[y*src.Stride : y*src.Stride+2*w]
			out := dst.Pix[y*dst.Stride : y*dst.Stride+w]
			for x := range out {
				out[x] = in[2*x] // high byte of a big-endian sample
			}
		}
	case *image.Paletted:
		var table [256]uint8 // unknown indices stay black
		for i, c := range src.Palette {
			if i == len(table) {
				break
			}
			if c != nil {
				table[i] = luminance(c.RGBA())
			}
		}
		for y := range h {
			in := src.Pix[y*src.Stride : y*src.Stride+w]
			out := dst.Pix[y*dst.Stride : y*dst.Stride+w]
			for x, index := range in {
				out[x] = table[index]
			}
		}
	default:
		grayGeneric(dst, img)
	}
	return dst
}

// grayGeneric converts any image pixel by pixel; it is the reference the
// fast paths are tested against.
func grayGeneric(dst *image.Gray, img image.Image) {
	b := img.Bounds()
	src64, fast := img.(image.RGBA64Image)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		out := dst.Pix[dst.PixOffset(b.Min.X, y):]
		for x := b.Min.X; x < b.Max.X; x++ {
			var r, g, bl, a uint32
			if fast {
				c := src64.RGBA64At(x, y)
				r, g, bl, a = uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A)
			} else {
				r, g, bl, a = img.At(x, y).RGBA()
			}
			out[x-b.Min.X] = luminance(r, g, bl, a)
		}
	}
}

// luminance returns the 8-bit luminance of a premultiplied 16-bit colour
// composited over white, with color.GrayModel's weights and rounding.
func luminance(r, g, b, a uint32) uint8 {
	if a > 0xffff {
		a = 0xffff
	}
	white := 0xffff - a
	r, g, b = min(r+white, 0xffff), min(g+white, 0xffff), min(b+white, 0xffff)
	return uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 24)
}
