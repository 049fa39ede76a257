package file

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/tallyhq/tally/blob"
)

// BenchmarkPut64K measures one durable Put (temp file, two fsyncs, rename)
// of a 64 KiB object, about the size of an OCR result.
func BenchmarkPut64K(b *testing.B) {
	s := newTestStore(b)
	data := bytes.Repeat([]byte("receipt!"), 64<<10/8)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Put(b.Context(), fmt.Sprintf("bench/%d", i%64), bytes.NewReader(data), blob.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGet64K measures opening and reading a whole 64 KiB object.
func BenchmarkGet64K(b *testing.B) {
	s := newTestStore(b)
	data := bytes.Repeat([]byte("receipt!"), 64<<10/8)
	if _, err := s.Put(b.Context(), "bench/get", bytes.NewReader(data), blob.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rc, _, err := s.Get(b.Context(), "bench/get")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(rc, buf); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// BenchmarkList1000 measures one full page of a listing (1000 objects,
// each header read for its size, ETag and time).
func BenchmarkList1000(b *testing.B) {
	s := newTestStore(b)
	for i := range 1000 {
		if _, err := s.Put(b.Context(), fmt.Sprintf("list/%02d/%04d", i%10, i), bytes.NewReader([]byte{byte(i)}), blob.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		page, err := s.List(b.Context(), blob.ListOptions{Prefix: "list/"})
		if err != nil || len(page.Objects) != 1000 {
			b.Fatal(len(page.Objects), err)
		}
	}
}
