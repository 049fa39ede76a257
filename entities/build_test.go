package entities_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocr"
)

func TestBuildIDsAndFields(t *testing.T) {
	t.Parallel()
	res := synthResult()
	added := time.Date(2025, 6, 21, 16, 55, 25, 881898000, time.UTC)
	s, err := entities.Build(entities.Source{
		ImageID: testImageID, Added: added, RawBucket: "raw", RawKey: "raw/x.png", SHA256: "abc",
		Result: res, Crops: []entities.CropInfo{{Bucket: "raw", Key: "raw/x_RECEIPT_00001.png", SHA256: "def"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	im := s.Images[0]
	if im.Width != 1000 || im.Height != 2000 || im.ImageType != ocr.TypePhoto {
		t.Errorf("image %d×%d %s, want the classification's 1000×2000 PHOTO", im.Width, im.Height, im.ImageType)
	}
	if im.TimestampAdded != "2025-06-21T16:55:25.881898000Z" || im.RawS3Key != "raw/x.png" || im.SHA256 != "abc" {
		t.Errorf("image %+v", im)
	}
	if len(s.Lines) != 4 || len(s.Words) != 7 || len(s.Letters) != 35 {
		t.Errorf("%d lines, %d words, %d letters, want 4, 7, 35", len(s.Lines), len(s.Words), len(s.Letters))
	}
	// Ids are 1-based positions within the parent.
	if w := s.Words[2]; w.LineID != 2 || w.WordID != 1 || w.Text != "MILK" {
		t.Errorf("third word %+v, want line 2 word 1 MILK", w)
	}
	if c := s.Letters[len(s.Letters)-1]; c.LineID != 4 || c.WordID != 1 || c.LetterID != 5 || c.Text != "e" {
		t.Errorf("last letter %+v, want line 4 word 1 letter 5 \"e\"", c)
	}
	if w := s.Words[5]; w.ExtractedData == nil || w.ExtractedData.Value != "5550100" || w.Tags == nil {
		t.Errorf("phone word %+v: extracted data or tags lost", w)
	}
	if len(s.Receipts) != 1 {
		t.Fatalf("%d receipts", len(s.Receipts))
	}
	r := s.Receipts[0]
	if r.ReceiptID != 1 || r.Width != 400 || r.Height != 300 || r.RawS3Key != "raw/x_RECEIPT_00001.png" || r.SHA256 != "def" ||
		r.Corners() != res.Receipts[0].Bounds || r.TimestampAdded != im.TimestampAdded {
		t.Errorf("receipt %+v", r)
	}
	if len(s.ReceiptLines) != 4 || len(s.ReceiptWords) != 6 || s.ReceiptLines[2].Text != "2.49" || s.ReceiptLines[2].LineID != 3 {
		t.Errorf("receipt lines %+v", s.ReceiptLines)
	}
	var rows []string
	for _, row := range s.ReceiptRows {
		rows = append(rows, row.Text)
	}
	if want := []string{"CORNER STORE", "MILK 2.49", "TEL 555-0100"}; !reflect.DeepEqual(rows, want) {
		t.Errorf("rows %q, want %q", rows, want)
	}
}

func TestBuildBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*entities.Source)
		want   error
	}{
		{"image line outside", func(s *entities.Source) { s.Result.Lines[1].TopRight.X = 1.5 }, ocr.ErrGeometry},
		{"letter outside", func(s *entities.Source) { s.Result.Lines[0].Words[0].Letters[2].BottomLeft.Y = -0.2 }, ocr.ErrGeometry},
		{"confidence above 1", func(s *entities.Source) { s.Result.Lines[2].Words[0].Confidence = 2 }, ocr.ErrGeometry},
		{"receipt line outside", func(s *entities.Source) { s.Result.Receipts[0].Lines[0].TopLeft.Y = 1.3 }, ocr.ErrGeometry},
		{"receipt corner outside", func(s *entities.Source) { s.Result.Receipts[0].Bounds.TopRight.X = 1.2 }, ocr.ErrGeometry},
		{"receipt corner NaN", func(s *entities.Source) { s.Result.Receipts[0].Bounds.BottomLeft.Y = math.NaN() }, ocr.ErrGeometry},
		{"empty crop", func(s *entities.Source) { s.Result.Receipts[0].WarpedWidth = 0 }, ocr.ErrGeometry},
		{"line index out of range", func(s *entities.Source) { s.Result.Receipts[0].LineIndices = []int{9} }, ocr.ErrMalformed},
		{"no result", func(s *entities.Source) { s.Result = nil }, tally.ErrInvalidArgument},
		{"no image id", func(s *entities.Source) { s.ImageID = "" }, tally.ErrInvalidArgument},
		{"key separator in id", func(s *entities.Source) { s.ImageID = "a#b" }, tally.ErrInvalidArgument},
		{"no size", func(s *entities.Source) { s.Result.Classification = nil }, tally.ErrInvalidArgument},
		{"negative size", func(s *entities.Source) { s.Width, s.Height = -3, 5 }, tally.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := entities.Source{ImageID: testImageID, Result: synthResult()}
			tt.change(&src)
			s, err := entities.Build(src)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Build = %v, want %v", err, tt.want)
			}
			if s.Len() != 0 {
				t.Errorf("failed Build returned %d entities", s.Len())
			}
		})
	}
}

func TestBuildWithoutReceipts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*ocr.Result)
	}{
		{"legacy", func(r *ocr.Result) { r.Classification, r.Clustering, r.Receipts = nil, nil, nil }},
		{"single pass, none found", func(r *ocr.Result) { r.Receipts = []ocr.Receipt{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := synthResult()
			tt.change(res)
			s, err := entities.Build(entities.Source{ImageID: testImageID, Width: 1000, Height: 2000, ImageType: ocr.TypeScan, Result: res})
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Images) != 1 || len(s.Lines) != 4 || len(s.Words) != 7 || len(s.Letters) != 35 {
				t.Errorf("image-level entities: %d images, %d lines, %d words, %d letters", len(s.Images), len(s.Lines), len(s.Words), len(s.Letters))
			}
			if n := len(s.Receipts) + len(s.ReceiptLines) + len(s.ReceiptWords) + len(s.ReceiptLetters) + len(s.ReceiptRows); n != 0 {
				t.Errorf("%d receipt-level entities, want none", n)
			}
			if s.Images[0].ImageType != ocr.TypeScan {
				t.Errorf("image type %q, want the source's SCAN", s.Images[0].ImageType)
			}
			data, err := json.Marshal(s.Export())
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{`"receipts":[]`, `"receipt_lines":[]`, `"receipt_words":[]`, `"receipt_letters":[]`, `"receipt_rows":[]`} {
				if !strings.Contains(string(data), key) {
					t.Errorf("export lacks %s", key)
				}
			}
		})
	}
}

func TestItemsKeys(t *testing.T) {
	t.Parallel()
	s, err := entities.Build(entities.Source{ImageID: testImageID, Result: synthResult()})
	if err != nil {
		t.Fatal(err)
	}
	its := s.Items()
	if len(its) != s.Len() {
		t.Fatalf("%d items for %d entities", len(its), s.Len())
	}
	byKey := map[string]items.Item{}
	for _, it := range its {
		if it.Key().PK != "IMAGE#"+testImageID {
			t.Fatalf("item PK %q", it.Key().PK)
		}
		byKey[it.Key().SK] = it
	}
	want := map[string]string{
		"IMAGE":                               entities.TypeImage,
		"LINE#00002":                          entities.TypeLine,
		"LINE#00002#WORD#00002":               entities.TypeWord,
		"LINE#00002#WORD#00002#LETTER#00003":  entities.TypeLetter,
		"RECEIPT#00001":                       entities.TypeReceipt,
		"RECEIPT#00001#LINE#00004":            entities.TypeReceiptLine,
		"RECEIPT#00001#LINE#00004#WORD#00002": entities.TypeReceiptWord,
		"RECEIPT#00001#LINE#00004#WORD#00002#LETTER#00008": entities.TypeReceiptLetter,
		"RECEIPT#00001#ROW#00002":                          entities.TypeReceiptRow,
	}
	for sk, typ := range want {
		it, ok := byKey[sk]
		if !ok {
			t.Errorf("no item with SK %s", sk)
			continue
		}
		if it[items.AttrType] != typ {
			t.Errorf("%s: TYPE %v, want %s", sk, it[items.AttrType], typ)
		}
	}
	for i := 1; i < len(its); i++ {
		if its[i-1].Key().SK >= its[i].Key().SK {
			t.Fatalf("items not in key order at %d: %s, %s", i, its[i-1].Key().SK, its[i].Key().SK)
		}
	}
	for _, it := range its {
		if _, err := items.PrepareItem(it, items.DefaultIndexes); err != nil {
			t.Errorf("%s: %v", it.Key().SK, err)
		}
	}
}

func TestExportJSONConventions(t *testing.T) {
	t.Parallel()
	s, err := entities.Build(entities.Source{ImageID: testImageID, Result: synthResult()})
	if err != nil {
		t.Fatal(err)
	}
	s.Images[0].CDNBucket, s.Images[0].CDNKey = "cdn", "assets/x.jpg"
	s.Images[0].CDNSizes = map[string]entities.Rendition{"thumbnail": {Key: "t.jpg", WebPKey: "t.webp"}, "small": {AVIFKey: "s.avif"}}
	data, err := json.Marshal(s.Export())
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string][]map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	img := raw["images"][0]
	for key, want := range map[string]string{"cdn_s3_key": "assets/x.jpg", "cdn_thumbnail_s3_key": "t.jpg",
		"cdn_thumbnail_webp_s3_key": "t.webp", "cdn_small_avif_s3_key": "s.avif"} {
		if img[key] != want {
			t.Errorf("image %s = %v, want %q", key, img[key], want)
		}
	}
	for _, absent := range []string{"cdn_webp_s3_key", "cdn_small_s3_key", "CDNSizes"} {
		if _, ok := img[absent]; ok {
			t.Errorf("image has %s, want it omitted", absent)
		}
	}
	if tags, ok := raw["words"][0]["tags"].([]any); !ok || len(tags) != 0 {
		t.Errorf("word tags %#v, want []", raw["words"][0]["tags"])
	}
	// And back: the flat sizes are read into CDNSizes.
	var back entities.Export
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s.Export()) {
		t.Errorf("export did not survive JSON:\n got %+v\nwant %+v", back.Images, s.Export().Images)
	}
}
