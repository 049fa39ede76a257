package tesseract

import (
	"bytes"
	"image"

	"github.com/tallyhq/tally/imaging"
)

// encodePGM writes img as an 8-bit binary PGM (P5), the cheapest format
// tesseract reads from stdin: tesseract works on gray anyway, and PGM needs
// no compression or temporary file. The conversion is imaging.Gray's (JPEG
// images give their luma plane; transparent parts become paper, not ink).
func encodePGM(img image.Image) []byte {
	g, ok := img.(*image.Gray)
	if !ok {
		g = imaging.Gray(img)
	}
	var buf bytes.Buffer
	buf.Grow(len(g.Pix) + 32)
	// Writing to a bytes.Buffer cannot fail.
	_ = imaging.EncodePGM(&buf, g)
	return buf.Bytes()
}
