package entities_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocrjob"
)

func partitionSize(t *testing.T, tbl items.Table, imageID string) int {
	t.Helper()
	all, err := items.QueryAll(context.Background(), tbl, items.Query{PK: "IMAGE#" + imageID})
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// checkRoundTrip writes s twice and loads it back.
func checkRoundTrip(t *testing.T, s entities.Set) {
	t.Helper()
	ctx := context.Background()
	tbl := openTable(t)
	imageID := s.Images[0].ImageID
	if err := entities.Write(ctx, tbl, s); err != nil {
		t.Fatal(err)
	}
	n := partitionSize(t, tbl, imageID)
	if n != s.Len() {
		t.Errorf("%d items stored for %d entities", n, s.Len())
	}
	if err := entities.Write(ctx, tbl, s); err != nil {
		t.Fatalf("second write: %v", err)
	}
	if again := partitionSize(t, tbl, imageID); again != n {
		t.Errorf("writing again left %d items, want %d", again, n)
	}
	got, err := entities.Load(ctx, tbl, imageID)
	if err != nil {
		t.Fatal(err)
	}
	want := s.Export()
	if !reflect.DeepEqual(got.Export(), want) {
		gj, _ := json.Marshal(got.Export())
		wj, _ := json.Marshal(want)
		t.Fatalf("loaded export differs from the built one:\n got %.2000s\nwant %.2000s", gj, wj)
	}
}

func TestRoundTripSynthetic(t *testing.T) {
	t.Parallel()
	s, err := entities.Build(entities.Source{ImageID: testImageID, RawBucket: "raw", RawKey: "raw/a.png", SHA256: "00ff",
		Added: time.Unix(1700000000, 123), Result: synthResult(), Crops: []entities.CropInfo{{Bucket: "raw", Key: "raw/a_RECEIPT_00001.png"}}})
	if err != nil {
		t.Fatal(err)
	}
	// What the process stage adds after renditions.
	s.Images[0].CDNBucket, s.Images[0].CDNKey, s.Images[0].CDNWebPKey, s.Images[0].CDNAVIFKey = "cdn", "a.jpg", "a.webp", "a.avif"
	s.Images[0].CDNSizes = map[string]entities.Rendition{"thumbnail": {Key: "t.jpg", WebPKey: "t.webp", AVIFKey: "t.avif"}}
	s.Receipts[0].CDNBucket, s.Receipts[0].CDNKey = "cdn", "a_RECEIPT_00001.jpg"
	s.Receipts[0].CDNSizes = map[string]entities.Rendition{"small": {WebPKey: "s.webp"}}
	s.Words[0].Tags = []string{"MERCHANT"}
	checkRoundTrip(t, s)
}

func TestRoundTripScanFixture(t *testing.T) {
	t.Parallel()
	res := analyzeLegacy(t, "scan_2f05267d.vision.json", 2480, 3508, 235)
	s, err := entities.Build(entities.Source{ImageID: scanImageID, Width: 2480, Height: 3508, Result: res})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() < 1300 {
		t.Fatalf("only %d entities", s.Len())
	}
	checkRoundTrip(t, s)
}

func TestLoadNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openTable(t)
	if _, err := entities.Load(ctx, tbl, testImageID); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("Load of an empty table = %v, want ErrNotFound", err)
	}
	// Only another stage's items: still no entities.
	if err := ocrjob.CreateJob(ctx, tbl, ocrjob.Job{ImageID: testImageID, JobID: "job-1", Key: "raw/a.png"}); err != nil {
		t.Fatal(err)
	}
	if _, err := entities.Load(ctx, tbl, testImageID); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("Load of an image with only its OCR job = %v, want ErrNotFound", err)
	}
	if _, err := entities.Load(ctx, tbl, "bad#id"); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("Load of a bad id = %v, want ErrInvalidArgument", err)
	}
}

// The OCR stage writes a partial Image item first; the process stage's
// Image must read it and replace it without dropping any of its fields.
func TestImageItemCompatibleWithOCRStage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openTable(t)
	added := time.Date(2025, 6, 10, 18, 32, 7, 311676000, time.UTC)
	partial := ocrjob.Image{ImageID: testImageID, Width: 1000, Height: 2000, Bucket: "raw", Key: "raw/a.png",
		SHA256: "00ff", ImageType: "PHOTO", Added: added}
	if err := tbl.TransactWrite(ctx, []items.Write{ocrjob.ImageWrite(partial)}); err != nil {
		t.Fatal(err)
	}
	if err := ocrjob.CreateJob(ctx, tbl, ocrjob.Job{ImageID: testImageID, JobID: "job-1", Key: "raw/a.png"}); err != nil {
		t.Fatal(err)
	}
	loaded, err := entities.Load(ctx, tbl, testImageID)
	if err != nil {
		t.Fatal(err)
	}
	want := entities.Image{ImageID: testImageID, Width: 1000, Height: 2000, TimestampAdded: ocrjob.FormatTime(added),
		RawS3Bucket: "raw", RawS3Key: "raw/a.png", SHA256: "00ff", ImageType: "PHOTO"}
	if len(loaded.Images) != 1 || !reflect.DeepEqual(loaded.Images[0], want) || loaded.Len() != 1 {
		t.Fatalf("loaded %+v, want just the image %+v", loaded, want)
	}
	before, err := tbl.Get(ctx, ocrjob.ImageKey(testImageID))
	if err != nil {
		t.Fatal(err)
	}
	s, err := entities.Build(entities.Source{ImageID: testImageID, Width: 1000, Height: 2000, ImageType: "PHOTO",
		Added: added, RawBucket: "raw", RawKey: "raw/a.png", SHA256: "00ff", Result: synthResult()})
	if err != nil {
		t.Fatal(err)
	}
	if err := entities.Write(ctx, tbl, s); err != nil {
		t.Fatal(err)
	}
	after, err := tbl.Get(ctx, ocrjob.ImageKey(testImageID))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range before {
		if !reflect.DeepEqual(after[name], v) {
			t.Errorf("image attribute %s: %v after the process stage's write, %v before", name, after[name], v)
		}
	}
	if n := partitionSize(t, tbl, testImageID); n != s.Len()+1 {
		t.Errorf("%d items in the partition, want %d entities and the OCR job", n, s.Len())
	}
}

func TestLoadMalformed(t *testing.T) {
	t.Parallel()
	s, err := entities.Build(entities.Source{ImageID: testImageID, Result: synthResult()})
	if err != nil {
		t.Fatal(err)
	}
	good := s.Items()
	find := func(sk string) items.Item {
		for _, it := range good {
			if it.Key().SK == sk {
				c := items.Item{}
				for k, v := range it {
					c[k] = v
				}
				return c
			}
		}
		t.Fatalf("no item %s", sk)
		return nil
	}
	tests := []struct {
		name string
		item func() items.Item
	}{
		{"bad sort key", func() items.Item { it := find("LINE#00001"); it["SK"] = "LINE#one"; return it }},
		{"sort key of another type", func() items.Item { it := find("LINE#00001"); it["SK"] = "RECEIPT#00009"; return it }},
		{"geometry missing", func() items.Item { it := find("LINE#00001#WORD#00001"); delete(it, "top_left"); return it }},
		{"coordinate not a number", func() items.Item {
			it := find("RECEIPT#00001")
			it["top_left"] = map[string]any{"x": "left", "y": 0.5}
			return it
		}},
		{"width not an integer", func() items.Item { it := find("IMAGE"); it["width"] = 10.5; return it }},
		{"text not a string", func() items.Item { it := find("RECEIPT#00001#LINE#00001"); it["text"] = 7; return it }},
		{"row lines not a list", func() items.Item { it := find("RECEIPT#00001#ROW#00001"); it["line_ids"] = "1,2"; return it }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tbl := openTable(t)
			if err := tbl.Put(ctx, tt.item(), items.Cond{}); err != nil {
				t.Fatal(err)
			}
			if _, err := entities.Load(ctx, tbl, testImageID); !errors.Is(err, entities.ErrMalformedItem) {
				t.Errorf("Load = %v, want ErrMalformedItem", err)
			}
		})
	}
}
