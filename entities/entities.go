// Package entities is the item-store form of one OCR result: the image, its
// lines, words and letters, and each receipt found in it with the
// receipt's own lines, words, letters and visual rows — the entities the
// system Tally replaces kept in its single table, with the same keys,
// field names and value conventions, so that its data stays readable and
// writable (DESIGN §3).
//
// The process stage builds a Set from an OCR result (Build) and writes it
// (Write); `tally export` reads it back (Load) and prints it as one JSON
// object (Set.Export) in the old export's shape.
//
// Coordinates follow the OCR contract: normalized 0–1, origin BOTTOM-left,
// y up. Image-level entities are in the image's space; receipt-level ones
// in the rectified receipt's own space, except a Receipt's four corners,
// which place the receipt in the image.
package entities

import (
	"errors"

	"github.com/tallyhq/tally/ocr"
)

// ErrMalformedItem marks a stored item of one of this package's types that
// cannot be read back (a key or attribute of the wrong shape).
var ErrMalformedItem = errors.New("entities: malformed item")

// Item types, the TYPE attribute of each entity's item, as the old system
// named them.
const (
	TypeImage         = "IMAGE"
	TypeLine          = "LINE"
	TypeWord          = "WORD"
	TypeLetter        = "LETTER"
	TypeReceipt       = "RECEIPT"
	TypeReceiptLine   = "RECEIPT_LINE"
	TypeReceiptWord   = "RECEIPT_WORD"
	TypeReceiptLetter = "RECEIPT_LETTER"
	TypeReceiptRow    = "RECEIPT_ROW"
)

// Rendition is one smaller web rendition of an image or receipt, in up to
// three formats. The old system stored it flat, as cdn_{size}_s3_key,
// cdn_{size}_webp_s3_key and cdn_{size}_avif_s3_key.
type Rendition struct {
	Key     string
	WebPKey string
	AVIFKey string
}

// Image is the photo or scan a user uploaded. Its item is the one the OCR
// stage starts (ocrjob.ImageWrite); the process stage rewrites it whole,
// with the web renditions once they exist.
type Image struct {
	ImageID        string `json:"image_id"`
	Width          int    `json:"width"`
	Height         int    `json:"height"`
	TimestampAdded string `json:"timestamp_added"`
	RawS3Bucket    string `json:"raw_s3_bucket"`
	RawS3Key       string `json:"raw_s3_key"`
	SHA256         string `json:"sha256,omitempty"`
	ImageType      string `json:"image_type,omitempty"`
	// Owner is the user who uploaded it ("" when accounts are off).
	Owner      string `json:"owner,omitempty"`
	CDNBucket  string `json:"cdn_s3_bucket,omitempty"`
	CDNKey     string `json:"cdn_s3_key,omitempty"`
	CDNWebPKey string `json:"cdn_webp_s3_key,omitempty"`
	CDNAVIFKey string `json:"cdn_avif_s3_key,omitempty"`
	// CDNSizes holds the smaller renditions by size name ("thumbnail",
	// "small", "medium"); stored and exported flat (see Rendition).
	CDNSizes map[string]Rendition `json:"-"`
}

// Line is one line of text in image space. Its id is its 1-based position
// in the OCR result's lines.
type Line struct {
	ImageID string `json:"image_id"`
	LineID  int    `json:"line_id"`
	Text    string `json:"text"`
	ocr.Geometry
}

// Word is one word in image space; its id is its 1-based position in the
// line. Tags is always an array ([] when untagged), as the old system
// wrote it.
type Word struct {
	ImageID       string             `json:"image_id"`
	LineID        int                `json:"line_id"`
	WordID        int                `json:"word_id"`
	Text          string             `json:"text"`
	ExtractedData *ocr.ExtractedData `json:"extracted_data,omitempty"`
	Tags          []string           `json:"tags"`
	ocr.Geometry
}

// Letter is one character in image space; its id is its 1-based position
// in the word.
type Letter struct {
	ImageID  string `json:"image_id"`
	LineID   int    `json:"line_id"`
	WordID   int    `json:"word_id"`
	LetterID int    `json:"letter_id"`
	Text     string `json:"text"`
	ocr.Geometry
}

// Receipt is one receipt found in the image: its corners in the image
// (normalized, y up), the pixel size of its rectified crop, and where the
// crop is stored. Its id is its 1-based position in the result's receipts.
type Receipt struct {
	ImageID        string    `json:"image_id"`
	ReceiptID      int       `json:"receipt_id"`
	Width          int       `json:"width"`
	Height         int       `json:"height"`
	TimestampAdded string    `json:"timestamp_added"`
	RawS3Bucket    string    `json:"raw_s3_bucket"`
	RawS3Key       string    `json:"raw_s3_key"`
	TopLeft        ocr.Point `json:"top_left"`
	TopRight       ocr.Point `json:"top_right"`
	BottomLeft     ocr.Point `json:"bottom_left"`
	BottomRight    ocr.Point `json:"bottom_right"`
	SHA256         string    `json:"sha256,omitempty"`
	CDNBucket      string    `json:"cdn_s3_bucket,omitempty"`
	CDNKey         string    `json:"cdn_s3_key,omitempty"`
	CDNWebPKey     string    `json:"cdn_webp_s3_key,omitempty"`
	CDNAVIFKey     string    `json:"cdn_avif_s3_key,omitempty"`
	// CDNSizes holds the smaller renditions by size name, as Image's.
	CDNSizes map[string]Rendition `json:"-"`
}

// Corners returns the receipt's corners in the image.
func (r Receipt) Corners() ocr.Quad {
	return ocr.Quad{TopLeft: r.TopLeft, TopRight: r.TopRight, BottomRight: r.BottomRight, BottomLeft: r.BottomLeft}
}

// ReceiptLine is one line of a receipt, in the rectified receipt's space.
type ReceiptLine struct {
	ImageID   string `json:"image_id"`
	ReceiptID int    `json:"receipt_id"`
	LineID    int    `json:"line_id"`
	Text      string `json:"text"`
	ocr.Geometry
}

// ReceiptWord is one word of a receipt line, in the receipt's space.
type ReceiptWord struct {
	ImageID       string             `json:"image_id"`
	ReceiptID     int                `json:"receipt_id"`
	LineID        int                `json:"line_id"`
	WordID        int                `json:"word_id"`
	Text          string             `json:"text"`
	ExtractedData *ocr.ExtractedData `json:"extracted_data,omitempty"`
	Tags          []string           `json:"tags"`
	ocr.Geometry
}

// ReceiptLetter is one character of a receipt word, in the receipt's
// space.
type ReceiptLetter struct {
	ImageID   string `json:"image_id"`
	ReceiptID int    `json:"receipt_id"`
	LineID    int    `json:"line_id"`
	WordID    int    `json:"word_id"`
	LetterID  int    `json:"letter_id"`
	Text      string `json:"text"`
	ocr.Geometry
}

// ReceiptRow is one visual row of a receipt: OCR often splits a printed
// row ("TOTAL" … "6.70") into several lines, and rows, not lines, are what
// gets embedded and labelled. RowID numbers rows from 1, top to bottom;
// LineIDs lists the member lines left to right (so LineIDs[0] is the row's
// leftmost, "primary" line); Text is their texts joined by a space;
// BoundingBox encloses them, in the receipt's space; GroupingVersion names
// the rule that grouped them.
type ReceiptRow struct {
	ImageID         string          `json:"image_id"`
	ReceiptID       int             `json:"receipt_id"`
	RowID           int             `json:"row_id"`
	LineIDs         []int           `json:"line_ids"`
	Text            string          `json:"text"`
	BoundingBox     ocr.BoundingBox `json:"bounding_box"`
	GroupingVersion string          `json:"grouping_version"`
}

// Set is every entity of one image, each slice in key order.
type Set struct {
	Images         []Image
	Lines          []Line
	Words          []Word
	Letters        []Letter
	Receipts       []Receipt
	ReceiptLines   []ReceiptLine
	ReceiptWords   []ReceiptWord
	ReceiptLetters []ReceiptLetter
	ReceiptRows    []ReceiptRow
	// ReceiptPlaces are written by the merchant resolver (one per receipt);
	// Items leaves them out, Load reads them.
	ReceiptPlaces []ReceiptPlace
	// ReceiptWordLabels, ReceiptSummaries and ReceiptLineItems are
	// written by receipt understanding; Items leaves them out, Load reads
	// them.
	ReceiptWordLabels []ReceiptWordLabel
	ReceiptSummaries  []ReceiptSummary
	ReceiptLineItems  []ReceiptLineItem
}

// Len counts the entities (one item each).
func (s Set) Len() int {
	return len(s.Images) + len(s.Lines) + len(s.Words) + len(s.Letters) + len(s.Receipts) +
		len(s.ReceiptLines) + len(s.ReceiptWords) + len(s.ReceiptLetters) + len(s.ReceiptRows)
}
