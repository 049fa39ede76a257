package tesseract

import (
	"image"
	"strconv"
)

// encodePGM writes img as an 8-bit binary PGM (P5), the cheapest format
// tesseract reads from stdin: tesseract works on gray anyway, and PGM needs
// no compression or temporary file.
//
// Gray images are copied as they are and JPEG (YCbCr) images give their luma
// plane, which is the same luminance as a conversion would compute. Any other
// image is converted pixel by pixel with the ITU-R 601 weights that
// color.GrayModel uses, after compositing over white, so transparent parts of
// a screenshot become paper rather than ink. RGBA and NRGBA (what PNGs
// decode to) read their pixels directly, several times faster than
// through the image.Image interface.
func encodePGM(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	header := "P5\n" + strconv.Itoa(w) + " " + strconv.Itoa(h) + "\n255\n"
	out := make([]byte, len(header)+w*h)
	copy(out, header)
	pix := out[len(header):]

	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			off := m.PixOffset(b.Min.X, b.Min.Y+y)
			copy(pix[y*w:(y+1)*w], m.Pix[off:off+w])
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			off := m.YOffset(b.Min.X, b.Min.Y+y)
			copy(pix[y*w:(y+1)*w], m.Y[off:off+w])
		}
	case *image.RGBA:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				pix[i] = luminanceOverWhite(m.RGBAAt(x, y).RGBA())
				i++
			}
		}
	case *image.NRGBA:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				pix[i] = luminanceOverWhite(m.NRGBAAt(x, y).RGBA())
				i++
			}
		}
	default:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				pix[i] = luminanceOverWhite(img.At(x, y).RGBA())
				i++
			}
		}
	}
	return out
}

// luminanceOverWhite composites an alpha-premultiplied 16-bit color over
// white and returns its 8-bit luminance. The weights sum to 1<<16, so the
// result fits in a byte and the sum in a uint32.
func luminanceOverWhite(r, g, b, a uint32) uint8 {
	paper := 0xffff - a
	r, g, b = r+paper, g+paper, b+paper
	return uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 24)
}
