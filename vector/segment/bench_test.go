package segment

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

const benchN, benchDims = 10_000, 512

var benchOnce = sync.OnceValues(func() ([]Record, []byte) {
	recs := genRecords(benchN, benchDims, 99)
	var buf bytes.Buffer
	if _, err := Write(&buf, benchDims, recs, nil, BuildOptions{Quantize: true}); err != nil {
		panic(err)
	}
	return recs, buf.Bytes()
})

// BenchmarkWrite encodes 10k × 512-dim records (~20 MB of float32); MB/s is
// of the segment written.
func BenchmarkWrite(b *testing.B) {
	recs, data := benchOnce()
	for _, q := range []bool{false, true} {
		name := "plain"
		if q {
			name = "quantized"
		}
		b.Run(name, func(b *testing.B) {
			var buf bytes.Buffer
			buf.Grow(len(data))
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				info, err := Write(&buf, benchDims, recs, nil, BuildOptions{Quantize: q})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(info.Bytes)
			}
		})
	}
}

// BenchmarkParse opens the 10k × 512 segment from memory: fully verified
// (reads every byte for the checksums) and with SkipVerify (bounds checks
// only, O(records) integer reads); nothing is copied either way.
func BenchmarkParse(b *testing.B) {
	_, data := benchOnce()
	for _, c := range []struct {
		name string
		opts ParseOptions
	}{{"verify", ParseOptions{}}, {"skip-verify", ParseOptions{SkipVerify: true}}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			if !c.opts.SkipVerify { // MB/s of checksumming; skip-verify reads O(records)
				b.SetBytes(int64(len(data)))
			}
			for b.Loop() {
				if _, err := ParseWith(data, c.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenFile maps and parses the 10k × 512 segment from a file (warm
// page cache), then closes it.
func BenchmarkOpenFile(b *testing.B) {
	_, data := benchOnce()
	path := filepath.Join(b.TempDir(), "seg")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts ParseOptions
	}{{"verify", ParseOptions{}}, {"skip-verify", ParseOptions{SkipVerify: true}}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, err := OpenFileWith(path, c.opts)
				if err != nil {
					b.Fatal(err)
				}
				_ = s.Close()
			}
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	recs, data := benchOnce()
	s, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, ok := s.Lookup(recs[i%benchN].ID); !ok {
			b.Fatal("not found")
		}
		i++
	}
}

func BenchmarkMetaField(b *testing.B) {
	_, data := benchOnce()
	s, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		v, _ := s.MetaField(i%benchN, "label")
		_ = v.Equal("GRAND_TOTAL")
		i++
	}
}

var sinkF float32
var sinkI int32

func BenchmarkDot512(b *testing.B) {
	_, data := benchOnce()
	s, _ := Parse(data)
	x, y := s.Vector(1), s.Vector(2)
	for b.Loop() {
		sinkF += Dot(x, y)
	}
}

func BenchmarkDotInt8_512(b *testing.B) {
	_, data := benchOnce()
	s, _ := Parse(data)
	x, _ := s.Quantized(1)
	y, _ := s.Quantized(2)
	for b.Loop() {
		sinkI += DotInt8(x, y)
	}
}
