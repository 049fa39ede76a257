package segment

import (
	"bytes"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse, raw and with every checksum
// recomputed (so mutations reach the structural checks), and exercises
// every accessor of whatever parses. Nothing may panic, and a segment that
// parses must answer consistently.
func FuzzParse(f *testing.F) {
	// Small seeds: the fuzzer minimizes every new interesting input, which
	// costs O(size²) executions, so big seeds would stall it.
	seeds := []shape{
		{"plain", 2, genRecords(3, 2, 1), nil, BuildOptions{}},
		{"all", 3, genRecords(4, 3, 2), []string{"x", "y"}, BuildOptions{Quantize: true, Graph: []byte("g")}},
		{"unicode", 1, []Record{{ID: "日本#1", Vector: []float32{1}, Meta: map[string]any{"k": "é", "b": true}}}, []string{"削除"}, BuildOptions{Quantize: true}},
		{"delete-only", 4, nil, []string{"IMAGE#1#RECEIPT#00001#LINE#00001"}, BuildOptions{}},
		{"empty", 1, nil, nil, BuildOptions{}},
	}
	for _, sh := range seeds {
		data := write(f, sh.dims, sh.recs, sh.tombs, sh.opts)
		f.Add(data)
		for _, cut := range []int{7, 63, 64, len(data) / 2, len(data) - 1} {
			f.Add(bytes.Clone(data[:cut]))
		}
	}
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))
	f.Add([]byte(magic + "\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		exercise(t, data, ParseOptions{})
		exercise(t, data, ParseOptions{SkipVerify: true})
		sealed := bytes.Clone(data)
		reseal(sealed)
		exercise(t, sealed, ParseOptions{})
	})
}

func exercise(t *testing.T, data []byte, opts ParseOptions) {
	s, err := ParseWith(data, opts)
	if err != nil {
		if s != nil {
			t.Fatal("non-nil segment with an error")
		}
		return
	}
	verified := s.Verify() == nil
	if !verified && !opts.SkipVerify {
		t.Fatal("Parse accepted what Verify rejects")
	}
	exerciseSegment(t, s, verified)
}

// exerciseSegment calls every accessor of s; if s is verified, it also
// checks that they agree with each other.
func exerciseSegment(t *testing.T, s *Segment, verified bool) {
	t.Helper()
	_ = s.Info()
	keys := s.MetaKeys()
	for i := 0; i < s.Len(); i++ {
		id := s.ID(i)
		if j, ok := s.Lookup(id); verified && (!ok || j != i) {
			t.Fatalf("Lookup(ID(%d)) = %d, %v", i, j, ok)
		}
		if len(s.Vector(i)) != s.Dims() {
			t.Fatalf("Vector(%d) has %d components", i, len(s.Vector(i)))
		}
		m := s.Meta(i)
		for _, k := range keys {
			v, ok := s.MetaField(i, k)
			if mv, in := m[k]; verified && (ok != in || (ok && !v.Equal(mv))) {
				t.Fatalf("MetaField(%d, %q) = %v %v, Meta has %v %v", i, k, v.Any(), ok, mv, in)
			}
		}
		if s.HasQuantized() {
			q, _ := s.Quantized(i)
			_ = DotInt8(q, q)
		}
		_ = Dot(s.Vector(i), s.Vector(i))
		_ = s.Record(i)
	}
	for _, id := range s.Tombstones() {
		if !s.Deletes(id) && verified {
			t.Fatalf("Deletes(%q) = false for a tombstone", id)
		}
	}
	_ = s.Graph()
	_ = s.Close()
}
