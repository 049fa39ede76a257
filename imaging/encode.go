package imaging

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
)

// pngEncoder favours speed: receipt crops are written once per receipt and
// BestSpeed is several times faster than the default for a few percent
// more bytes.
var pngEncoder = png.Encoder{CompressionLevel: png.BestSpeed}

// EncodePNG writes img as a PNG with fast compression, for receipt crops.
func EncodePNG(w io.Writer, img image.Image) error {
	if img == nil {
		return errors.New("imaging: encode png: nil image")
	}
	if err := pngEncoder.Encode(w, img); err != nil {
		return fmt.Errorf("imaging: encode png: %w", err)
	}
	return nil
}

// EncodePGM writes g as a binary PGM (P5), the cheapest format to pipe to
// tesseract: a short text header followed by the raw rows.
func EncodePGM(w io.Writer, g *image.Gray) error {
	if g == nil {
		return errors.New("imaging: encode pgm: nil image")
	}
	b := g.Bounds()
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "P5\n%d %d\n255\n", b.Dx(), b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		i := g.PixOffset(b.Min.X, y)
		if _, err := bw.Write(g.Pix[i : i+b.Dx()]); err != nil {
			return fmt.Errorf("imaging: encode pgm: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("imaging: encode pgm: %w", err)
	}
	return nil
}
