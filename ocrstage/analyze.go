// Package ocrstage is the OCR stage of the pipeline: it turns a raw receipt
// image into the OCR result contract (single-pass form) and hands it to the
// process stage.
//
// The story of one job: download the image → decode it (EXIF orientation
// honoured) → recognize every line of the whole image → classify the image
// (NATIVE, PHOTO or SCAN) → cluster the lines into receipts and find each
// receipt's corners → rectify each receipt into an upright crop and
// recognize it again → annotate dates, phones, addresses and URLs → store
// crops and the result JSON, the routing item, the ocr-results message, and
// mark the job COMPLETED.
//
// External OCR workers skip the recognition: Analyze with their lines maps
// them into each receipt's crop instead of recognizing it again.
package ocrstage

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/tallyhq/tally/layout"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/extract"
)

// ErrNoText means the image holds no text at all: the job cannot succeed.
var ErrNoText = errors.New("no text found in the image")

// Analysis is the result of analysing one image: the result document and
// the rectified crop of each of its receipts (same order as Receipts).
type Analysis struct {
	Result *ocr.Result
	Crops  []*image.Gray
	// Recognitions counts engine calls (1 for the whole image, plus one
	// per receipt that was not already upright).
	Recognitions int
}

// Analyze builds the single-pass result for one image. With engine set and
// lines nil it recognizes the whole image and then each rectified receipt;
// with lines given (an external worker's) and engine nil it maps those
// lines into each receipt's crop instead. A NATIVE image is its own single
// receipt and is never recognized twice.
func Analyze(ctx context.Context, g *image.Gray, lines []ocr.Line, engine ocr.Engine) (*Analysis, error) {
	recognitions := 0
	if lines == nil {
		if engine == nil {
			return nil, errors.New("analyze: neither lines nor an engine")
		}
		var err error
		if lines, err = engine.Recognize(ctx, g); err != nil {
			return nil, fmt.Errorf("recognize image: %w", err)
		}
		recognitions++
	}
	if len(lines) == 0 {
		return nil, ErrNoText
	}
	extract.Annotate(lines)
	cls := layout.Classify(g, lines)
	regions, clustering := layout.FindReceipts(g, lines, cls)
	res := &ocr.Result{Lines: lines, Classification: &cls, Clustering: &clustering, Receipts: []ocr.Receipt{}}
	a := &Analysis{Result: res, Recognitions: recognitions}
	for _, reg := range regions {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		crop, tf, err := layout.Rectify(g, reg, cls.ImageType)
		if err != nil {
			// A receipt that cannot be rectified (degenerate corners) is
			// left out; its lines stay in the image's lines.
			continue
		}
		var recLines []ocr.Line
		switch {
		case cls.ImageType == ocr.TypeNative && len(regions) == 1,
			Upright(reg.Bounds, g.Bounds().Dx(), g.Bounds().Dy()):
			// The crop holds the same pixels, upright and unscaled: a
			// second recognition would only repeat the first one, so its
			// lines are carried into the crop exactly.
			recLines = mapLines(lines, reg.LineIndices, tf)
		case engine != nil:
			if recLines, err = engine.Recognize(ctx, crop); err != nil {
				return nil, fmt.Errorf("recognize receipt %d: %w", reg.ClusterID, err)
			}
			a.Recognitions++
			extract.Annotate(recLines)
		default:
			recLines = mapLines(lines, reg.LineIndices, tf)
		}
		b := crop.Bounds()
		res.Receipts = append(res.Receipts, ocr.Receipt{
			ClusterID:    reg.ClusterID,
			Bounds:       reg.Bounds,
			WarpedWidth:  b.Dx(),
			WarpedHeight: b.Dy(),
			LineIndices:  append([]int{}, reg.LineIndices...),
			Lines:        recLines,
		})
		a.Crops = append(a.Crops, crop)
	}
	return a, nil
}

// UprightTolerance is the largest tilt (degrees) of a receipt's edges, and
// relative difference of its opposite edges' lengths, at which its crop
// counts as the image's own pixels, merely cut out.
const UprightTolerance = 2.0

// Upright reports whether a receipt's corners (normalized, in a w×h image)
// form an axis-aligned rectangle within UprightTolerance: then rectifying
// it is a plain crop and needs no second recognition.
func Upright(q ocr.Quad, w, h int) bool {
	px := func(p ocr.Point) (float64, float64) { return p.Pixel(w, h) }
	tlx, tly := px(q.TopLeft)
	trx, try := px(q.TopRight)
	brx, bry := px(q.BottomRight)
	blx, bly := px(q.BottomLeft)
	deg := func(dx, dy float64) float64 { return math.Abs(math.Atan2(dy, dx)) * 180 / math.Pi }
	top, bottom := deg(trx-tlx, try-tly), deg(brx-blx, bry-bly)
	left, right := deg(bly-tly, blx-tlx), deg(bry-try, brx-trx)
	if max(top, bottom, left, right) > UprightTolerance {
		return false
	}
	wTop, wBottom := math.Hypot(trx-tlx, try-tly), math.Hypot(brx-blx, bry-bly)
	hLeft, hRight := math.Hypot(blx-tlx, bly-tly), math.Hypot(brx-trx, bry-try)
	rel := func(a, b float64) float64 { return math.Abs(a-b) / max(a, b, 1) * 100 }
	return rel(wTop, wBottom) <= UprightTolerance && rel(hLeft, hRight) <= UprightTolerance
}

// mapLines carries the chosen image lines into a receipt's normalized
// coordinates, keeping text, confidence and extracted data.
func mapLines(lines []ocr.Line, idx []int, tf layout.Transform) []ocr.Line {
	out := make([]ocr.Line, 0, len(idx))
	for _, i := range idx {
		if i < 0 || i >= len(lines) {
			continue
		}
		l := lines[i]
		m := ocr.Line{Text: l.Text, Geometry: mapGeometry(l.Geometry, tf), Words: make([]ocr.Word, len(l.Words))}
		for j, w := range l.Words {
			mw := ocr.Word{Text: w.Text, Geometry: mapGeometry(w.Geometry, tf), ExtractedData: w.ExtractedData, Letters: make([]ocr.Letter, len(w.Letters))}
			for k, c := range w.Letters {
				mw.Letters[k] = ocr.Letter{Text: c.Text, Geometry: mapGeometry(c.Geometry, tf)}
			}
			m.Words[j] = mw
		}
		out = append(out, m)
	}
	return out
}

func mapGeometry(g ocr.Geometry, tf layout.Transform) ocr.Geometry {
	clamp := func(p ocr.Point) ocr.Point {
		return ocr.Point{X: min(max(p.X, 0), 1), Y: min(max(p.Y, 0), 1)}
	}
	q := g.Quad()
	return ocr.NewGeometry(ocr.Quad{
		TopLeft:     clamp(tf.ToReceipt(q.TopLeft)),
		TopRight:    clamp(tf.ToReceipt(q.TopRight)),
		BottomRight: clamp(tf.ToReceipt(q.BottomRight)),
		BottomLeft:  clamp(tf.ToReceipt(q.BottomLeft)),
	}, g.Confidence)
}
