package merchant_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tallyhq/tally/embed/hashed"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/fakes"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/merchant"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/places"
	"github.com/tallyhq/tally/places/google"
	"github.com/tallyhq/tally/vector"

	blobfile "github.com/tallyhq/tally/blob/file"
)

var known = []fakes.Place{
	{ID: "ChIJ-vons", Name: "Vons", Address: "1130 W Ventura Blvd, Camarillo, CA 93010, USA", Phone: "+18055551234",
		Website: "https://www.vons.com/", Types: []string{"supermarket", "store"}, Lat: 34.2, Lng: -119.0},
	{ID: "ChIJ-bar", Name: "Barrel Proof", Address: "1201 Magazine St, New Orleans, LA 70130, USA", Phone: "+15045551111",
		Types: []string{"bar"}, Lat: 29.9, Lng: -90.0},
}

type bundle struct {
	items    items.Table
	vectors  *vector.Store
	searcher *pipeline.Searcher
	places   *fakes.Places
	cache    *places.Cache
}

func setup(t *testing.T, withKey bool) *bundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	bs, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := hashed.New(256)
	vs, err := vector.New(vector.Options{Blob: bs, Items: tbl, Dims: 256})
	if err != nil {
		t.Fatal(err)
	}
	vc, err := vector.OpenCache(ctx, bs, vector.CacheOptions{Dir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vc.Close() })
	s, err := pipeline.NewSearcher(vs, vc, emb, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{items: tbl, vectors: vs, searcher: s, places: fakes.NewPlaces(t, known)}
	if withKey {
		c, err := google.New(google.Options{APIKey: "test-key", BaseURL: b.places.URL, LegacyBaseURL: b.places.URL})
		if err != nil {
			t.Fatal(err)
		}
		b.cache = places.NewCache(c, tbl, places.CacheOptions{})
	}
	return b
}

func (b *bundle) resolver() *merchant.Resolver {
	r := &merchant.Resolver{Similar: b.searcher, Items: b.items, Now: func() time.Time { return time.Unix(1700000000, 0) }}
	if b.cache != nil {
		r.Places = b.cache
	}
	return r
}

// receipt builds a one-receipt entity set from row texts (one line per
// row), annotating words as the OCR stage does.
func receipt(imageID string, rows ...string) entities.Set {
	s := entities.Set{Images: []entities.Image{{ImageID: imageID}}, Receipts: []entities.Receipt{{ImageID: imageID, ReceiptID: 1}}}
	lines := make([]ocr.Line, len(rows))
	for i, text := range rows {
		y := 0.95 - float64(i)*0.05
		var words []ocr.Word
		for _, w := range splitWords(text) {
			words = append(words, ocr.Word{Text: w})
		}
		lines[i] = ocr.Line{Text: text, Words: words, Geometry: ocr.NewGeometry(ocr.Quad{
			TopLeft: ocr.Point{X: 0.1, Y: y}, TopRight: ocr.Point{X: 0.9, Y: y},
			BottomRight: ocr.Point{X: 0.9, Y: y - 0.03}, BottomLeft: ocr.Point{X: 0.1, Y: y - 0.03}}, 1)}
	}
	extractAnnotate(lines)
	for i, l := range lines {
		s.ReceiptRows = append(s.ReceiptRows, entities.ReceiptRow{ImageID: imageID, ReceiptID: 1, RowID: i + 1, LineIDs: []int{i + 1}, Text: l.Text})
		for j, w := range l.Words {
			s.ReceiptWords = append(s.ReceiptWords, entities.ReceiptWord{ImageID: imageID, ReceiptID: 1, LineID: i + 1, WordID: j + 1, Text: w.Text, ExtractedData: w.ExtractedData})
		}
	}
	return s
}

func TestPhoneMatch(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	set := receipt("img-phone", "VONS", "Store 2135", "(805) 555-1234", "BALANCE 3.60")
	p, err := b.resolver().Resolve(context.Background(), set, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.PlaceID != "ChIJ-vons" || p.ValidationStatus != entities.PlaceMatched || !slices.Contains(p.MatchedFields, "phone") || p.ValidatedBy != "PHONE_LOOKUP" {
		t.Errorf("place = %+v", p)
	}
	// Warm cache: the same receipt again costs no Places request.
	before := b.places.Requests()
	if _, err := b.resolver().Resolve(context.Background(), set, 1); err != nil {
		t.Fatal(err)
	}
	if after := b.places.Requests(); after != before {
		t.Errorf("warm cache made %d Places requests", after-before)
	}
}

func TestAddressMatch(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	set := receipt("img-addr", "BARREL PROOF", "1201 Magazine Street", "New Orleans, LA 70130", "TOTAL 24.00")
	p, err := b.resolver().Resolve(context.Background(), set, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.PlaceID != "ChIJ-bar" || !slices.Contains(p.MatchedFields, "address") || p.Confidence < 0.5 {
		t.Errorf("place = %+v", p)
	}
}

func TestTollFreeNotSentToPlaces(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	set := receipt("img-toll", "SOME CHAIN", "Questions? 1-800-555-0199", "TOTAL 5.00")
	if _, err := b.resolver().Resolve(context.Background(), set, 1); err != nil {
		t.Fatal(err)
	}
	if phones := b.places.Phones(); len(phones) != 0 {
		t.Errorf("phone numbers sent to Places: %v", phones)
	}
	c := merchant.ExtractClues(set, 1)
	if !c.TollFree || c.Phone != "" {
		t.Errorf("clues = %+v", c)
	}
}

// TestSimilarReceiptWithoutKey: with no Places key, a new receipt takes
// the place of a similar receipt resolved earlier.
func TestSimilarReceiptWithoutKey(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	ctx := context.Background()
	rows := []string{"VONS", "Store 2135 Dir Tomas de la Cruz", "Main: (805) 555-1234", "1130 W Ventura Blvd"}
	earlier := receipt("img-earlier", append(rows, "BALANCE 3.60")...)
	// The earlier receipt is indexed and resolved (as the process stage
	// would have done with a key).
	emb, _ := hashed.New(256)
	texts := pipeline.RowTexts(append(rows, "BALANCE 3.60"))
	vecs, _ := emb.Embed(ctx, texts)
	var recs []vector.Record
	for i, v := range vecs {
		recs = append(recs, vector.Record{ID: "IMAGE#img-earlier#RECEIPT#00001#LINE#0000" + string(rune('1'+i)), Vector: v,
			Meta: map[string]any{"image_id": "img-earlier", "receipt_id": 1}})
	}
	if _, err := b.vectors.WriteDelta(ctx, vector.CollectionLines, "run-earlier", recs, nil); err != nil {
		t.Fatal(err)
	}
	_ = earlier
	prev := entities.ReceiptPlace{ImageID: "img-earlier", ReceiptID: 1, PlaceID: "ChIJ-vons", MerchantName: "Vons",
		PhoneNumber: "+1 805-555-1234", FormattedAddress: known[0].Address, ValidationStatus: entities.PlaceMatched, Confidence: 0.95}
	if err := b.items.Put(ctx, prev.Item(), items.Cond{}); err != nil {
		t.Fatal(err)
	}
	// An unrelated earlier receipt with a place too.
	other := entities.ReceiptPlace{ImageID: "img-other", ReceiptID: 1, PlaceID: "ChIJ-bar", MerchantName: "Barrel Proof", ValidationStatus: entities.PlaceMatched}
	b.items.Put(ctx, other.Item(), items.Cond{})

	now := receipt("img-now", append(rows, "BALANCE 7.10")...)
	p, err := b.resolver().Resolve(ctx, now, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.PlaceID != "ChIJ-vons" || p.ValidatedBy != "SIMILAR_RECEIPT" || !slices.Contains(p.MatchedFields, "phone") {
		t.Errorf("place = %+v", p)
	}
	if b.places.Requests() != 0 {
		t.Errorf("Places asked %d times without a key", b.places.Requests())
	}
	// A receipt like nothing seen before: NO_MATCH, with the printed name.
	p, err = b.resolver().Resolve(ctx, receipt("img-new", "ZED'S HARDWARE", "42 Elm Road", "NAILS 3.00"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.ValidationStatus != entities.PlaceNoMatch || p.PlaceID != "" || p.MerchantName != "ZED'S HARDWARE" {
		t.Errorf("unknown merchant = %+v", p)
	}
}
