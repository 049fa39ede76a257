package entities

import (
	"fmt"
	"math"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrjob"
)

// Source is what Build needs about one image: its identity and storage
// (which the OCR result does not carry) and the OCR result itself.
type Source struct {
	ImageID string
	// Width and Height are the image's pixel size; zero takes the
	// classification's.
	Width, Height int
	// ImageType is NATIVE, PHOTO or SCAN; empty takes the classification's.
	ImageType string
	// Added is when the image was uploaded (the stored Image item's
	// timestamp_added, so that a redelivered record rewrites identical
	// items); zero means now.
	Added                     time.Time
	RawBucket, RawKey, SHA256 string
	// Result is the OCR result, in the single-pass form for receipts to
	// be built (a legacy result gives image-level entities only).
	Result *ocr.Result
	// Crops says where each receipt's rectified crop is stored, in the
	// order of Result.Receipts; missing entries (or an empty Key, which
	// falls back to the receipt's own s3_key) leave the fields empty.
	Crops []CropInfo
}

// CropInfo locates one receipt's rectified crop.
type CropInfo struct {
	Bucket, Key, SHA256 string
}

// Build turns one OCR result into the image's entities. Ids are 1-based
// positions: line_id is the line's index in Result.Lines plus one, word and
// letter ids count within their parent, receipt_id is the receipt's index
// in Result.Receipts plus one and its lines are numbered within it.
// Geometry out of range is an error wrapping ocr.ErrGeometry; a missing
// result, image id or size is tally.ErrInvalidArgument.
func Build(src Source) (Set, error) {
	if src.Result == nil {
		return Set{}, fmt.Errorf("build entities: no OCR result: %w", tally.ErrInvalidArgument)
	}
	if err := ocrjob.ValidateID("image_id", src.ImageID); err != nil {
		return Set{}, fmt.Errorf("build entities: %w", err)
	}
	res := src.Result
	w, h, imageType := src.Width, src.Height, src.ImageType
	if c := res.Classification; c != nil {
		if w == 0 && h == 0 {
			w, h = c.ImageWidth, c.ImageHeight
		}
		if imageType == "" {
			imageType = c.ImageType
		}
	}
	if w <= 0 || h <= 0 {
		return Set{}, fmt.Errorf("build entities of %s: image size %d×%d: %w", src.ImageID, w, h, tally.ErrInvalidArgument)
	}
	if err := res.Validate(); err != nil {
		return Set{}, fmt.Errorf("build entities of %s: %w", src.ImageID, err)
	}
	for i, rc := range res.Receipts {
		if err := validateReceipt(rc); err != nil {
			return Set{}, fmt.Errorf("build entities of %s: receipt %d: %w", src.ImageID, i+1, err)
		}
	}
	added := src.Added
	if added.IsZero() {
		added = time.Now()
	}
	stamp := ocrjob.FormatTime(added)
	id := src.ImageID

	var s Set
	s.Images = []Image{{
		ImageID: id, Width: w, Height: h, TimestampAdded: stamp,
		RawS3Bucket: src.RawBucket, RawS3Key: src.RawKey, SHA256: src.SHA256, ImageType: imageType,
	}}
	for i, l := range res.Lines {
		lineID := i + 1
		s.Lines = append(s.Lines, Line{ImageID: id, LineID: lineID, Text: l.Text, Geometry: l.Geometry})
		for j, wd := range l.Words {
			wordID := j + 1
			s.Words = append(s.Words, Word{ImageID: id, LineID: lineID, WordID: wordID, Text: wd.Text,
				ExtractedData: copyExtracted(wd.ExtractedData), Tags: []string{}, Geometry: wd.Geometry})
			for k, c := range wd.Letters {
				s.Letters = append(s.Letters, Letter{ImageID: id, LineID: lineID, WordID: wordID, LetterID: k + 1,
					Text: c.Text, Geometry: c.Geometry})
			}
		}
	}
	for i, rc := range res.Receipts {
		receiptID := i + 1
		var crop CropInfo
		if i < len(src.Crops) {
			crop = src.Crops[i]
		}
		if crop.Key == "" {
			crop.Key = rc.S3Key
		}
		s.Receipts = append(s.Receipts, Receipt{
			ImageID: id, ReceiptID: receiptID, Width: rc.WarpedWidth, Height: rc.WarpedHeight,
			TimestampAdded: stamp, RawS3Bucket: crop.Bucket, RawS3Key: crop.Key, SHA256: crop.SHA256,
			TopLeft: rc.Bounds.TopLeft, TopRight: rc.Bounds.TopRight,
			BottomLeft: rc.Bounds.BottomLeft, BottomRight: rc.Bounds.BottomRight,
		})
		first := len(s.ReceiptLines)
		for j, l := range rc.Lines {
			lineID := j + 1
			s.ReceiptLines = append(s.ReceiptLines, ReceiptLine{ImageID: id, ReceiptID: receiptID, LineID: lineID,
				Text: l.Text, Geometry: l.Geometry})
			for k, wd := range l.Words {
				wordID := k + 1
				s.ReceiptWords = append(s.ReceiptWords, ReceiptWord{ImageID: id, ReceiptID: receiptID, LineID: lineID,
					WordID: wordID, Text: wd.Text, ExtractedData: copyExtracted(wd.ExtractedData), Tags: []string{},
					Geometry: wd.Geometry})
				for n, c := range wd.Letters {
					s.ReceiptLetters = append(s.ReceiptLetters, ReceiptLetter{ImageID: id, ReceiptID: receiptID,
						LineID: lineID, WordID: wordID, LetterID: n + 1, Text: c.Text, Geometry: c.Geometry})
				}
			}
		}
		s.ReceiptRows = append(s.ReceiptRows, GroupRows(s.ReceiptLines[first:], rc.WarpedWidth, rc.WarpedHeight)...)
	}
	return s, nil
}

// validateReceipt checks what Result.Validate does not: the receipt's
// corners lie in the image and its crop has a size.
func validateReceipt(rc ocr.Receipt) error {
	const tol = 1e-6
	for _, p := range rc.Bounds.Points() {
		if math.IsNaN(p.X) || math.IsNaN(p.Y) || p.X < -tol || p.X > 1+tol || p.Y < -tol || p.Y > 1+tol {
			return fmt.Errorf("%w: corner (%g, %g) outside 0–1", ocr.ErrGeometry, p.X, p.Y)
		}
	}
	if rc.WarpedWidth <= 0 || rc.WarpedHeight <= 0 {
		return fmt.Errorf("%w: rectified size %d×%d", ocr.ErrGeometry, rc.WarpedWidth, rc.WarpedHeight)
	}
	return nil
}

func copyExtracted(e *ocr.ExtractedData) *ocr.ExtractedData {
	if e == nil {
		return nil
	}
	c := *e
	return &c
}
