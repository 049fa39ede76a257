package entities_test

import (
	"context"
	"testing"

	"github.com/tallyhq/tally/entities"
)

// scanSet builds the real scan's entities (1,3xx items) for benchmarks.
func scanSet(b *testing.B) entities.Set {
	b.Helper()
	res := analyzeLegacy(b, "scan_2f05267d.vision.json", 2480, 3508, 235)
	s, err := entities.Build(entities.Source{ImageID: scanImageID, Width: 2480, Height: 3508, Result: res})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkBuildAndItems(b *testing.B) {
	res := analyzeLegacy(b, "scan_2f05267d.vision.json", 2480, 3508, 235)
	b.ReportAllocs()
	for b.Loop() {
		s, err := entities.Build(entities.Source{ImageID: scanImageID, Width: 2480, Height: 3508, Result: res})
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Items()
	}
}

func BenchmarkWriteSQLite(b *testing.B) {
	s := scanSet(b)
	tbl := openTable(b)
	ctx := context.Background()
	for b.Loop() {
		if err := entities.Write(ctx, tbl, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Len()), "items/op")
}

func BenchmarkLoadSQLite(b *testing.B) {
	s := scanSet(b)
	tbl := openTable(b)
	ctx := context.Background()
	if err := entities.Write(ctx, tbl, s); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := entities.Load(ctx, tbl, scanImageID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Len()), "items/op")
}
