// Package ocr holds the OCR result contract shared with the system Tally
// replaces, and the Engine port that produces it.
//
// Every coordinate in this package is normalized to 0–1 with the origin at the
// BOTTOM-left of the image and y pointing up, exactly as the old system's
// Apple Vision worker wrote it. Pixel space (origin top-left, y down) appears
// only at the edges, through FromPixel and Point.Pixel.
package ocr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"sort"
)

// Image types, as the classifier names them and the old system stored them.
const (
	TypeNative = "NATIVE" // a screenshot or digital receipt that fills the frame
	TypePhoto  = "PHOTO"  // a phone photo: receipts lie on a background, in perspective
	TypeScan   = "SCAN"   // a flatbed scan: receipts are flat, maybe rotated
)

// Point is a normalized position (0–1, origin bottom-left, y up).
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Pixel converts p to pixel space (origin top-left, y down) of a w×h image.
func (p Point) Pixel(w, h int) (x, y float64) {
	return p.X * float64(w), (1 - p.Y) * float64(h)
}

// FromPixel converts a pixel-space position of a w×h image to a Point.
func FromPixel(x, y float64, w, h int) Point {
	return Point{X: x / float64(w), Y: 1 - y/float64(h)}
}

// BoundingBox is the axis-aligned box around a quad: X and Y are its minimum
// corner (the bottom-left, since y points up).
type BoundingBox struct {
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

// Quad is four corners of a possibly rotated or skewed region.
type Quad struct {
	TopLeft     Point `json:"top_left"`
	TopRight    Point `json:"top_right"`
	BottomRight Point `json:"bottom_right"`
	BottomLeft  Point `json:"bottom_left"`
}

// Points returns the corners clockwise from the top-left (as seen on screen).
func (q Quad) Points() [4]Point {
	return [4]Point{q.TopLeft, q.TopRight, q.BottomRight, q.BottomLeft}
}

// Geometry is what every line, word and letter carries: its quad, the box
// around it, the angle of its top edge and the engine's confidence (0–1).
type Geometry struct {
	BoundingBox  BoundingBox `json:"bounding_box"`
	TopLeft      Point       `json:"top_left"`
	TopRight     Point       `json:"top_right"`
	BottomLeft   Point       `json:"bottom_left"`
	BottomRight  Point       `json:"bottom_right"`
	AngleDegrees float64     `json:"angle_degrees"`
	AngleRadians float64     `json:"angle_radians"`
	Confidence   float64     `json:"confidence"`
}

// NewGeometry derives the bounding box and angle from a quad. The angle is the
// slope of the top edge measured in normalized space, as the old system did
// (so it ignores the image's aspect ratio).
func NewGeometry(q Quad, confidence float64) Geometry {
	pts := q.Points()
	minX, minY, maxX, maxY := pts[0].X, pts[0].Y, pts[0].X, pts[0].Y
	for _, p := range pts[1:] {
		minX, maxX = math.Min(minX, p.X), math.Max(maxX, p.X)
		minY, maxY = math.Min(minY, p.Y), math.Max(maxY, p.Y)
	}
	rad := math.Atan2(q.TopRight.Y-q.TopLeft.Y, q.TopRight.X-q.TopLeft.X)
	return Geometry{
		BoundingBox:  BoundingBox{X: minX, Y: minY, Width: maxX - minX, Height: maxY - minY},
		TopLeft:      q.TopLeft,
		TopRight:     q.TopRight,
		BottomLeft:   q.BottomLeft,
		BottomRight:  q.BottomRight,
		AngleDegrees: rad * 180 / math.Pi,
		AngleRadians: rad,
		Confidence:   confidence,
	}
}

// Quad returns the four corners of g.
func (g Geometry) Quad() Quad {
	return Quad{TopLeft: g.TopLeft, TopRight: g.TopRight, BottomRight: g.BottomRight, BottomLeft: g.BottomLeft}
}

// Center is the mean of the four corners.
func (g Geometry) Center() Point {
	return Point{
		X: (g.TopLeft.X + g.TopRight.X + g.BottomLeft.X + g.BottomRight.X) / 4,
		Y: (g.TopLeft.Y + g.TopRight.Y + g.BottomLeft.Y + g.BottomRight.Y) / 4,
	}
}

// Validate reports a coordinate outside 0–1 (with a small tolerance for
// engines that round outward) or a confidence outside 0–1.
func (g Geometry) Validate() error {
	const tol = 1e-6
	for _, p := range g.Quad().Points() {
		if math.IsNaN(p.X) || math.IsNaN(p.Y) || p.X < -tol || p.X > 1+tol || p.Y < -tol || p.Y > 1+tol {
			return fmt.Errorf("%w: point (%g, %g) outside 0–1", ErrGeometry, p.X, p.Y)
		}
	}
	if math.IsNaN(g.Confidence) || g.Confidence < 0 || g.Confidence > 1 {
		return fmt.Errorf("%w: confidence %g outside 0–1", ErrGeometry, g.Confidence)
	}
	return nil
}

// ErrGeometry marks coordinates or confidences out of range.
var ErrGeometry = errors.New("ocr: geometry out of range")

// ErrMalformed marks a result document that is not the contract's JSON.
var ErrMalformed = errors.New("ocr: malformed result")

// Extraction types found by rules on words.
const (
	ExtractDate    = "date"
	ExtractPhone   = "phone"
	ExtractAddress = "address"
	ExtractURL     = "url"
)

// ExtractedData is structured data a rule found in a word (and its line).
type ExtractedData struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Letter is one character. Its id is its 1-based position in the word.
type Letter struct {
	Text string `json:"text"`
	Geometry
}

// Word is one word. Its id is its 1-based position in the line.
type Word struct {
	Text string `json:"text"`
	Geometry
	ExtractedData *ExtractedData `json:"extracted_data,omitempty"`
	Letters       []Letter       `json:"letters"`
}

// Line is one line of text. Its id is its 1-based position in the result.
type Line struct {
	Text string `json:"text"`
	Geometry
	Words []Word `json:"words"`
}

// Margins are the empty fractions of the image on each side of the text.
type Margins struct {
	Left   float64 `json:"left"`
	Right  float64 `json:"right"`
	Top    float64 `json:"top"`
	Bottom float64 `json:"bottom"`
}

// Classification says what kind of image the receipt came in and why.
type Classification struct {
	ImageType     string  `json:"image_type"`
	Margins       Margins `json:"margins"`
	ScanDistance  float64 `json:"scan_distance"`
	PhotoDistance float64 `json:"photo_distance"`
	ImageWidth    int     `json:"image_width"`
	ImageHeight   int     `json:"image_height"`
}

// Clustering records how lines were grouped into receipts.
type Clustering struct {
	Method   string  `json:"method"` // "dbscan" (photos), "x_axis" (scans) or "single" (native)
	Epsilon  float64 `json:"epsilon,omitempty"`
	Clusters int     `json:"clusters"`
	// Noise lists the 0-based indices of lines that belong to no receipt.
	Noise []int `json:"noise_line_indices,omitempty"`
}

// Receipt is one receipt found in a single-pass result: its corners in the
// image, the size of its rectified crop, and its lines OCRed again in the
// crop's own normalized coordinates.
type Receipt struct {
	ClusterID    int    `json:"cluster_id"`
	Bounds       Quad   `json:"bounds"`
	WarpedWidth  int    `json:"warped_width"`
	WarpedHeight int    `json:"warped_height"`
	S3Key        string `json:"s3_key,omitempty"`
	// LineIndices are the 0-based indices into Result.Lines of the lines
	// that belong to this receipt.
	LineIndices []int  `json:"line_indices"`
	Lines       []Line `json:"lines"`
	// Extra keeps fields Tally does not interpret (line items, barcodes,
	// sections, model predictions) so that a result read and written back
	// loses nothing.
	Extra map[string]json.RawMessage `json:"-"`
}

// Result is an OCR result document in either form: legacy (Lines only) or
// single-pass (Classification, Clustering and Receipts as well).
type Result struct {
	Lines          []Line          `json:"lines"`
	Classification *Classification `json:"classification,omitempty"`
	Clustering     *Clustering     `json:"clustering,omitempty"`
	Receipts       []Receipt       `json:"receipts,omitempty"`
	// Extra keeps top-level fields Tally does not interpret.
	Extra map[string]json.RawMessage `json:"-"`
}

// SinglePass reports whether r is in the single-pass form.
func (r *Result) SinglePass() bool { return r.Classification != nil || r.Receipts != nil }

// Decode parses an OCR result document in either form. Unknown fields are
// kept in Extra; a document that is not a JSON object with a "lines" array
// is ErrMalformed.
func Decode(data []byte) (*Result, error) {
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		if errors.Is(err, ErrMalformed) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &r, nil
}

// Encode writes r as JSON in the contract's form.
func Encode(r *Result) ([]byte, error) { return json.Marshal(r) }

// Validate checks every line, word and letter (and every receipt's lines)
// for geometry in range.
func (r *Result) Validate() error {
	check := func(where string, lines []Line) error {
		for i, l := range lines {
			if err := l.Geometry.Validate(); err != nil {
				return fmt.Errorf("%s line %d: %w", where, i+1, err)
			}
			for j, w := range l.Words {
				if err := w.Geometry.Validate(); err != nil {
					return fmt.Errorf("%s line %d word %d: %w", where, i+1, j+1, err)
				}
				for k, c := range w.Letters {
					if err := c.Geometry.Validate(); err != nil {
						return fmt.Errorf("%s line %d word %d letter %d: %w", where, i+1, j+1, k+1, err)
					}
				}
			}
		}
		return nil
	}
	if err := check("image", r.Lines); err != nil {
		return err
	}
	for _, rc := range r.Receipts {
		if err := check(fmt.Sprintf("receipt %d", rc.ClusterID), rc.Lines); err != nil {
			return err
		}
		for _, i := range rc.LineIndices {
			if i < 0 || i >= len(r.Lines) {
				return fmt.Errorf("%w: receipt %d line index %d of %d lines", ErrMalformed, rc.ClusterID, i, len(r.Lines))
			}
		}
	}
	return nil
}

// UnmarshalJSON reads the known fields and keeps the rest in Extra.
func (r *Result) UnmarshalJSON(data []byte) error {
	type plain Result
	var p plain
	extra, err := unmarshalKnown(data, &p, "lines", "classification", "clustering", "receipts")
	if err != nil {
		return err
	}
	if p.Lines == nil {
		return fmt.Errorf("%w: no \"lines\" array", ErrMalformed)
	}
	*r = Result(p)
	r.Extra = extra
	return nil
}

// MarshalJSON writes the known fields and then Extra.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	p := plain(r)
	if p.Lines == nil {
		p.Lines = []Line{}
	}
	extra := r.Extra
	if r.Receipts != nil && len(r.Receipts) == 0 {
		// omitempty drops an empty list, but "receipts": [] (single pass,
		// none found) must not read back as the legacy form.
		extra = make(map[string]json.RawMessage, len(r.Extra)+1)
		maps.Copy(extra, r.Extra)
		extra["receipts"] = json.RawMessage("[]")
	}
	return marshalWithExtra(p, extra)
}

// UnmarshalJSON reads the known fields and keeps the rest in Extra.
func (rc *Receipt) UnmarshalJSON(data []byte) error {
	type plain Receipt
	var p plain
	extra, err := unmarshalKnown(data, &p, "cluster_id", "bounds", "warped_width", "warped_height", "s3_key", "line_indices", "lines")
	if err != nil {
		return err
	}
	*rc = Receipt(p)
	rc.Extra = extra
	return nil
}

// MarshalJSON writes the known fields and then Extra.
func (rc Receipt) MarshalJSON() ([]byte, error) {
	type plain Receipt
	p := plain(rc)
	if p.LineIndices == nil {
		p.LineIndices = []int{}
	}
	if p.Lines == nil {
		p.Lines = []Line{}
	}
	return marshalWithExtra(p, rc.Extra)
}

// MarshalJSON writes letters as an array even when there are none, as the
// contract does.
func (w Word) MarshalJSON() ([]byte, error) {
	type plain Word
	p := plain(w)
	if p.Letters == nil {
		p.Letters = []Letter{}
	}
	return json.Marshal(p)
}

// MarshalJSON writes words as an array even when there are none.
func (l Line) MarshalJSON() ([]byte, error) {
	type plain Line
	p := plain(l)
	if p.Words == nil {
		p.Words = []Word{}
	}
	return json.Marshal(p)
}

// unmarshalKnown decodes data into v and returns the fields whose names are
// not in known.
func unmarshalKnown(data []byte, v any, known ...string) (map[string]json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, err
	}
	for _, k := range known {
		delete(all, k)
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}

// marshalWithExtra encodes v (a struct) and appends the extra fields in key
// order, so output is deterministic.
func marshalWithExtra(v any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1]) // drop the closing brace
	for _, k := range keys {
		name, _ := json.Marshal(k)
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(extra[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
