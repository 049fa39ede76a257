package entities

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrjob"
)

// Keys (DESIGN §3). Every entity of an image lives in the image's
// partition, PK = IMAGE#{image_id}, with ids zero-padded to five digits so
// that sort keys sort by id:
//
//	IMAGE
//	LINE#{l}                                  LINE
//	LINE#{l}#WORD#{w}                         WORD
//	LINE#{l}#WORD#{w}#LETTER#{n}              LETTER
//	RECEIPT#{r}                               RECEIPT
//	RECEIPT#{r}#LINE#{l}                      RECEIPT_LINE
//	RECEIPT#{r}#LINE#{l}#WORD#{w}             RECEIPT_WORD
//	RECEIPT#{r}#LINE#{l}#WORD#{w}#LETTER#{n}  RECEIPT_LETTER
//	RECEIPT#{r}#ROW#{row}                     RECEIPT_ROW
//
// RECEIPT#{r}#ROW#{row} is Tally's (DESIGN names no row key); it is the
// form the old system's ReceiptRow used. No item carries GSI attributes:
// the only query here is the image's partition, and the table's GSITYPE
// index already lists every item by TYPE.
const (
	pkPrefix = "IMAGE#"
	skImage  = "IMAGE"
)

func pk(imageID string) string { return pkPrefix + imageID }

func lineSK(l int) string           { return fmt.Sprintf("LINE#%05d", l) }
func wordSK(l, w int) string        { return fmt.Sprintf("LINE#%05d#WORD#%05d", l, w) }
func letterSK(l, w, n int) string   { return fmt.Sprintf("LINE#%05d#WORD#%05d#LETTER#%05d", l, w, n) }
func receiptSK(r int) string        { return fmt.Sprintf("RECEIPT#%05d", r) }
func receiptLineSK(r, l int) string { return fmt.Sprintf("RECEIPT#%05d#LINE#%05d", r, l) }
func receiptWordSK(r, l, w int) string {
	return fmt.Sprintf("RECEIPT#%05d#LINE#%05d#WORD#%05d", r, l, w)
}
func receiptRowSK(r, row int) string { return fmt.Sprintf("RECEIPT#%05d#ROW#%05d", r, row) }
func receiptLetterSK(r, l, w, n int) string {
	return fmt.Sprintf("RECEIPT#%05d#LINE#%05d#WORD#%05d#LETTER#%05d", r, l, w, n)
}

// Items returns one item per entity, in key order. Each item holds the
// entity's export fields (ids included, though the keys are what Load
// trusts) plus PK, SK and TYPE.
func (s Set) Items() []items.Item {
	out := make([]items.Item, 0, s.Len())
	for _, im := range s.Images {
		it := newItem(im.ImageID, skImage, TypeImage)
		it["image_id"] = im.ImageID
		it["width"], it["height"] = im.Width, im.Height
		it["timestamp_added"] = im.TimestampAdded
		it["raw_s3_bucket"], it["raw_s3_key"] = im.RawS3Bucket, im.RawS3Key
		// Always present, as ocrjob.ImageWrite writes them: this item
		// replaces that one.
		it["sha256"], it["image_type"] = im.SHA256, im.ImageType
		if im.Owner != "" {
			it["owner"] = im.Owner
		}
		setCDN(it, im.CDNBucket, im.CDNKey, im.CDNWebPKey, im.CDNAVIFKey, im.CDNSizes)
		out = append(out, it)
	}
	for _, l := range s.Lines {
		it := newItem(l.ImageID, lineSK(l.LineID), TypeLine)
		setIDs(it, l.ImageID, 0, l.LineID, 0, 0)
		setText(it, l.Text, l.Geometry)
		out = append(out, it)
	}
	for _, w := range s.Words {
		it := newItem(w.ImageID, wordSK(w.LineID, w.WordID), TypeWord)
		setIDs(it, w.ImageID, 0, w.LineID, w.WordID, 0)
		setText(it, w.Text, w.Geometry)
		setWordExtras(it, w.ExtractedData, w.Tags)
		out = append(out, it)
	}
	for _, c := range s.Letters {
		it := newItem(c.ImageID, letterSK(c.LineID, c.WordID, c.LetterID), TypeLetter)
		setIDs(it, c.ImageID, 0, c.LineID, c.WordID, c.LetterID)
		setText(it, c.Text, c.Geometry)
		out = append(out, it)
	}
	for _, r := range s.Receipts {
		it := newItem(r.ImageID, receiptSK(r.ReceiptID), TypeReceipt)
		setIDs(it, r.ImageID, r.ReceiptID, 0, 0, 0)
		it["width"], it["height"] = r.Width, r.Height
		it["timestamp_added"] = r.TimestampAdded
		it["raw_s3_bucket"], it["raw_s3_key"] = r.RawS3Bucket, r.RawS3Key
		it["top_left"], it["top_right"] = pointAttr(r.TopLeft), pointAttr(r.TopRight)
		it["bottom_left"], it["bottom_right"] = pointAttr(r.BottomLeft), pointAttr(r.BottomRight)
		if r.SHA256 != "" {
			it["sha256"] = r.SHA256
		}
		setCDN(it, r.CDNBucket, r.CDNKey, r.CDNWebPKey, r.CDNAVIFKey, r.CDNSizes)
		out = append(out, it)
	}
	for _, l := range s.ReceiptLines {
		it := newItem(l.ImageID, receiptLineSK(l.ReceiptID, l.LineID), TypeReceiptLine)
		setIDs(it, l.ImageID, l.ReceiptID, l.LineID, 0, 0)
		setText(it, l.Text, l.Geometry)
		out = append(out, it)
	}
	for _, w := range s.ReceiptWords {
		it := newItem(w.ImageID, receiptWordSK(w.ReceiptID, w.LineID, w.WordID), TypeReceiptWord)
		setIDs(it, w.ImageID, w.ReceiptID, w.LineID, w.WordID, 0)
		setText(it, w.Text, w.Geometry)
		setWordExtras(it, w.ExtractedData, w.Tags)
		out = append(out, it)
	}
	for _, c := range s.ReceiptLetters {
		it := newItem(c.ImageID, receiptLetterSK(c.ReceiptID, c.LineID, c.WordID, c.LetterID), TypeReceiptLetter)
		setIDs(it, c.ImageID, c.ReceiptID, c.LineID, c.WordID, c.LetterID)
		setText(it, c.Text, c.Geometry)
		out = append(out, it)
	}
	for _, row := range s.ReceiptRows {
		it := newItem(row.ImageID, receiptRowSK(row.ReceiptID, row.RowID), TypeReceiptRow)
		setIDs(it, row.ImageID, row.ReceiptID, 0, 0, 0)
		it["row_id"] = row.RowID
		ids := make([]any, len(row.LineIDs))
		for i, id := range row.LineIDs {
			ids[i] = id
		}
		it["line_ids"] = ids
		it["text"] = row.Text
		it["bounding_box"] = boxAttr(row.BoundingBox)
		it["grouping_version"] = row.GroupingVersion
		out = append(out, it)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key().SK < out[j].Key().SK })
	return out
}

func newItem(imageID, sk, typ string) items.Item {
	return items.Item{items.AttrPK: pk(imageID), items.AttrSK: sk, items.AttrType: typ}
}

// setIDs writes the non-zero ids (image_id always).
func setIDs(it items.Item, imageID string, receipt, line, word, letter int) {
	it["image_id"] = imageID
	for name, v := range map[string]int{"receipt_id": receipt, "line_id": line, "word_id": word, "letter_id": letter} {
		if v != 0 {
			it[name] = v
		}
	}
}

func setText(it items.Item, text string, g ocr.Geometry) {
	it["text"] = text
	it["bounding_box"] = boxAttr(g.BoundingBox)
	it["top_left"], it["top_right"] = pointAttr(g.TopLeft), pointAttr(g.TopRight)
	it["bottom_left"], it["bottom_right"] = pointAttr(g.BottomLeft), pointAttr(g.BottomRight)
	it["angle_degrees"], it["angle_radians"] = g.AngleDegrees, g.AngleRadians
	it["confidence"] = g.Confidence
}

func setWordExtras(it items.Item, e *ocr.ExtractedData, tags []string) {
	list := make([]any, len(tags))
	for i, t := range tags {
		list[i] = t
	}
	it["tags"] = list
	if e != nil {
		it["extracted_data"] = map[string]any{"type": e.Type, "value": e.Value}
	}
}

func setCDN(it items.Item, bucket, key, webp, avif string, sizes map[string]Rendition) {
	for name, v := range map[string]string{"cdn_s3_bucket": bucket, "cdn_s3_key": key, "cdn_webp_s3_key": webp, "cdn_avif_s3_key": avif} {
		if v != "" {
			it[name] = v
		}
	}
	for name, v := range flatSizes(sizes) {
		it[name] = v
	}
}

func pointAttr(p ocr.Point) map[string]any { return map[string]any{"x": p.X, "y": p.Y} }

func boxAttr(b ocr.BoundingBox) map[string]any {
	return map[string]any{"x": b.X, "y": b.Y, "width": b.Width, "height": b.Height}
}

// Write stores every entity of s with batch puts of up to
// items.MaxBatchWrite items. Puts replace whole items, so writing the same
// set again (a redelivered record) rewrites identical items and never
// duplicates one. It does not delete items a previous, different set of
// the same image had and this one lacks.
func Write(ctx context.Context, t items.Table, s Set) error {
	if err := items.PutAll(ctx, t, s.Items()); err != nil {
		return fmt.Errorf("write entities: %w", err)
	}
	return nil
}

// Load reads every entity of one image with one paginated query of its
// partition; items of other types there (OCR jobs, routing, labels) are
// skipped. An image without any entity is tally.ErrNotFound; an entity item
// that cannot be read is ErrMalformedItem.
func Load(ctx context.Context, t items.Table, imageID string) (Set, error) {
	if err := ocrjob.ValidateID("image_id", imageID); err != nil {
		return Set{}, fmt.Errorf("load entities: %w", err)
	}
	all, err := items.QueryAll(ctx, t, items.Query{PK: pk(imageID)})
	if err != nil {
		return Set{}, fmt.Errorf("load entities of %s: %w", imageID, err)
	}
	var s Set
	for _, it := range all {
		if err := s.add(imageID, it); err != nil {
			return Set{}, fmt.Errorf("load entities of %s: %w", imageID, err)
		}
	}
	if s.Len()+len(s.ReceiptPlaces)+len(s.ReceiptWordLabels)+len(s.ReceiptSummaries)+len(s.ReceiptLineItems) == 0 {
		return Set{}, fmt.Errorf("load entities of %s: %w", imageID, tally.ErrNotFound)
	}
	s.sort()
	return s, nil
}

// add decodes one item into s, by its TYPE.
func (s *Set) add(imageID string, it items.Item) error {
	typ, _ := it[items.AttrType].(string)
	sk := it.Key().SK
	r := reader{it: it}
	switch typ {
	case TypeImage:
		if sk != skImage {
			return malformed(it, "image sort key")
		}
		im := Image{ImageID: imageID, Width: r.int("width"), Height: r.int("height"),
			TimestampAdded: r.str("timestamp_added"), RawS3Bucket: r.str("raw_s3_bucket"), RawS3Key: r.str("raw_s3_key"),
			SHA256: r.str("sha256"), ImageType: r.str("image_type"), Owner: r.str("owner")}
		im.CDNBucket, im.CDNKey, im.CDNWebPKey, im.CDNAVIFKey, im.CDNSizes = r.cdn()
		s.Images = append(s.Images, im)
	case TypeLine:
		ids, err := skIDs(sk, "LINE")
		if err != nil {
			return malformed(it, err.Error())
		}
		s.Lines = append(s.Lines, Line{ImageID: imageID, LineID: ids[0], Text: r.str("text"), Geometry: r.geometry()})
	case TypeWord:
		ids, err := skIDs(sk, "LINE", "WORD")
		if err != nil {
			return malformed(it, err.Error())
		}
		e, tags := r.wordExtras()
		s.Words = append(s.Words, Word{ImageID: imageID, LineID: ids[0], WordID: ids[1], Text: r.str("text"),
			ExtractedData: e, Tags: tags, Geometry: r.geometry()})
	case TypeLetter:
		ids, err := skIDs(sk, "LINE", "WORD", "LETTER")
		if err != nil {
			return malformed(it, err.Error())
		}
		s.Letters = append(s.Letters, Letter{ImageID: imageID, LineID: ids[0], WordID: ids[1], LetterID: ids[2],
			Text: r.str("text"), Geometry: r.geometry()})
	case TypeReceipt:
		ids, err := skIDs(sk, "RECEIPT")
		if err != nil {
			return malformed(it, err.Error())
		}
		rc := Receipt{ImageID: imageID, ReceiptID: ids[0], Width: r.int("width"), Height: r.int("height"),
			TimestampAdded: r.str("timestamp_added"), RawS3Bucket: r.str("raw_s3_bucket"), RawS3Key: r.str("raw_s3_key"),
			TopLeft: r.point("top_left"), TopRight: r.point("top_right"),
			BottomLeft: r.point("bottom_left"), BottomRight: r.point("bottom_right"), SHA256: r.str("sha256")}
		rc.CDNBucket, rc.CDNKey, rc.CDNWebPKey, rc.CDNAVIFKey, rc.CDNSizes = r.cdn()
		s.Receipts = append(s.Receipts, rc)
	case TypeReceiptLine:
		ids, err := skIDs(sk, "RECEIPT", "LINE")
		if err != nil {
			return malformed(it, err.Error())
		}
		s.ReceiptLines = append(s.ReceiptLines, ReceiptLine{ImageID: imageID, ReceiptID: ids[0], LineID: ids[1],
			Text: r.str("text"), Geometry: r.geometry()})
	case TypeReceiptWord:
		ids, err := skIDs(sk, "RECEIPT", "LINE", "WORD")
		if err != nil {
			return malformed(it, err.Error())
		}
		e, tags := r.wordExtras()
		s.ReceiptWords = append(s.ReceiptWords, ReceiptWord{ImageID: imageID, ReceiptID: ids[0], LineID: ids[1],
			WordID: ids[2], Text: r.str("text"), ExtractedData: e, Tags: tags, Geometry: r.geometry()})
	case TypeReceiptLetter:
		ids, err := skIDs(sk, "RECEIPT", "LINE", "WORD", "LETTER")
		if err != nil {
			return malformed(it, err.Error())
		}
		s.ReceiptLetters = append(s.ReceiptLetters, ReceiptLetter{ImageID: imageID, ReceiptID: ids[0], LineID: ids[1],
			WordID: ids[2], LetterID: ids[3], Text: r.str("text"), Geometry: r.geometry()})
	case TypeReceiptRow:
		ids, err := skIDs(sk, "RECEIPT", "ROW")
		if err != nil {
			return malformed(it, err.Error())
		}
		s.ReceiptRows = append(s.ReceiptRows, ReceiptRow{ImageID: imageID, ReceiptID: ids[0], RowID: ids[1],
			LineIDs: r.ints("line_ids"), Text: r.str("text"), BoundingBox: r.box("bounding_box"),
			GroupingVersion: r.str("grouping_version")})
	case TypeReceiptPlace:
		p, err := PlaceFromItem(it)
		if err != nil {
			return err
		}
		s.ReceiptPlaces = append(s.ReceiptPlaces, p)
	case TypeReceiptWordLabel, TypeReceiptSummary, TypeReceiptLineItem:
		return s.addUnderstanding(it)
	default:
		return nil // another stage's item
	}
	if r.err != nil {
		return malformed(it, r.err.Error())
	}
	return nil
}

func malformed(it items.Item, why string) error {
	k := it.Key()
	return fmt.Errorf("%w: %s/%s: %s", ErrMalformedItem, k.PK, k.SK, why)
}

// skIDs parses a sort key of the form NAME#{id}#NAME#{id}… with the given
// names.
func skIDs(sk string, names ...string) ([]int, error) {
	parts := strings.Split(sk, "#")
	if len(parts) != 2*len(names) {
		return nil, fmt.Errorf("sort key %q is not %s#…", sk, strings.Join(names, "#…#"))
	}
	ids := make([]int, len(names))
	for i, name := range names {
		if parts[2*i] != name {
			return nil, fmt.Errorf("sort key %q: want %s at part %d", sk, name, 2*i+1)
		}
		id, err := strconv.Atoi(parts[2*i+1])
		if err != nil || id < 0 {
			return nil, fmt.Errorf("sort key %q: bad %s id", sk, strings.ToLower(name))
		}
		ids[i] = id
	}
	return ids, nil
}

// reader decodes attributes of one item, remembering the first problem.
// Strings are lenient (absent or NULL read as ""), as the old system wrote
// NULL for empty optional strings; numbers and geometry are required.
type reader struct {
	it  items.Item
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) str(name string) string {
	switch v := r.it[name].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		r.fail("%s is %T, not a string", name, v)
		return ""
	}
}

func number(v any) (float64, bool) {
	n, ok, err := items.NumberOf(v)
	if !ok || err != nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

func (r *reader) float(m map[string]any, where, name string) float64 {
	f, ok := number(m[name])
	if !ok {
		r.fail("%s%s is %T, not a number", where, name, m[name])
	}
	return f
}

func (r *reader) int(name string) int {
	n, ok := integer(r.it[name])
	if !ok {
		r.fail("%s is %v, not an integer", name, r.it[name])
	}
	return n
}

// integer reads a whole number of any stored numeric form.
func integer(v any) (int, bool) {
	f, ok := number(v)
	if !ok || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

func (r *reader) ints(name string) []int {
	var list []any
	switch v := r.it[name].(type) {
	case []any:
		list = v
	default:
		r.fail("%s is %T, not a list", name, v)
		return nil
	}
	out := make([]int, len(list))
	for i, e := range list {
		n, ok := integer(e)
		if !ok {
			r.fail("%s[%d] is %v, not an integer", name, i, e)
		}
		out[i] = n
	}
	return out
}

func (r *reader) mapAttr(name string) map[string]any {
	m, ok := r.it[name].(map[string]any)
	if !ok {
		r.fail("%s is %T, not a map", name, r.it[name])
	}
	return m
}

func (r *reader) point(name string) ocr.Point {
	m := r.mapAttr(name)
	return ocr.Point{X: r.float(m, name+".", "x"), Y: r.float(m, name+".", "y")}
}

func (r *reader) box(name string) ocr.BoundingBox {
	m := r.mapAttr(name)
	w := name + "."
	return ocr.BoundingBox{X: r.float(m, w, "x"), Y: r.float(m, w, "y"), Width: r.float(m, w, "width"), Height: r.float(m, w, "height")}
}

func (r *reader) geometry() ocr.Geometry {
	return ocr.Geometry{
		BoundingBox: r.box("bounding_box"),
		TopLeft:     r.point("top_left"), TopRight: r.point("top_right"),
		BottomLeft: r.point("bottom_left"), BottomRight: r.point("bottom_right"),
		AngleDegrees: r.float(r.it, "", "angle_degrees"), AngleRadians: r.float(r.it, "", "angle_radians"),
		Confidence: r.float(r.it, "", "confidence"),
	}
}

// wordExtras reads extracted_data (optional) and tags (a list or string
// set; absent reads as none).
func (r *reader) wordExtras() (*ocr.ExtractedData, []string) {
	var e *ocr.ExtractedData
	if m, ok := r.it["extracted_data"].(map[string]any); ok {
		typ, _ := m["type"].(string)
		val, _ := m["value"].(string)
		e = &ocr.ExtractedData{Type: typ, Value: val}
	}
	tags := []string{}
	switch v := r.it["tags"].(type) {
	case []any:
		for _, t := range v {
			if s, ok := t.(string); ok {
				tags = append(tags, s)
			}
		}
	case []string:
		tags = append(tags, v...)
	}
	return e, tags
}

func (r *reader) cdn() (bucket, key, webp, avif string, sizes map[string]Rendition) {
	for name, v := range r.it {
		if s, ok := v.(string); ok {
			addSize(&sizes, name, s)
		}
	}
	return r.str("cdn_s3_bucket"), r.str("cdn_s3_key"), r.str("cdn_webp_s3_key"), r.str("cdn_avif_s3_key"), sizes
}

// sort puts every slice in key order (ids compared as numbers, so ids past
// 99999 still sort right).
func (s *Set) sort() {
	sort.SliceStable(s.Lines, func(i, j int) bool { return s.Lines[i].LineID < s.Lines[j].LineID })
	sort.SliceStable(s.Words, func(i, j int) bool {
		a, b := s.Words[i], s.Words[j]
		return less(a.LineID, b.LineID, a.WordID, b.WordID)
	})
	sort.SliceStable(s.Letters, func(i, j int) bool {
		a, b := s.Letters[i], s.Letters[j]
		return less(a.LineID, b.LineID, a.WordID, b.WordID, a.LetterID, b.LetterID)
	})
	sort.SliceStable(s.Receipts, func(i, j int) bool { return s.Receipts[i].ReceiptID < s.Receipts[j].ReceiptID })
	sort.SliceStable(s.ReceiptLines, func(i, j int) bool {
		a, b := s.ReceiptLines[i], s.ReceiptLines[j]
		return less(a.ReceiptID, b.ReceiptID, a.LineID, b.LineID)
	})
	sort.SliceStable(s.ReceiptWords, func(i, j int) bool {
		a, b := s.ReceiptWords[i], s.ReceiptWords[j]
		return less(a.ReceiptID, b.ReceiptID, a.LineID, b.LineID, a.WordID, b.WordID)
	})
	sort.SliceStable(s.ReceiptLetters, func(i, j int) bool {
		a, b := s.ReceiptLetters[i], s.ReceiptLetters[j]
		return less(a.ReceiptID, b.ReceiptID, a.LineID, b.LineID, a.WordID, b.WordID, a.LetterID, b.LetterID)
	})
	sort.SliceStable(s.ReceiptRows, func(i, j int) bool {
		a, b := s.ReceiptRows[i], s.ReceiptRows[j]
		return less(a.ReceiptID, b.ReceiptID, a.RowID, b.RowID)
	})
	s.sortUnderstanding()
}

// less compares pairs (a1, b1), (a2, b2), … lexicographically: a < b.
func less(pairs ...int) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] != pairs[i+1] {
			return pairs[i] < pairs[i+1]
		}
	}
	return false
}

// GetReceipt reads one Receipt item (its size, corners and renditions)
// without the rest of the image's partition; tally.ErrNotFound when absent.
func GetReceipt(ctx context.Context, t items.Table, imageID string, receiptID int) (Receipt, error) {
	it, err := t.Get(ctx, items.Key{PK: pk(imageID), SK: receiptSK(receiptID)})
	if err != nil {
		return Receipt{}, fmt.Errorf("get receipt %s/%d: %w", imageID, receiptID, err)
	}
	var s Set
	if err := s.add(imageID, it); err != nil {
		return Receipt{}, err
	}
	if len(s.Receipts) != 1 {
		return Receipt{}, malformed(it, "not a receipt")
	}
	return s.Receipts[0], nil
}
