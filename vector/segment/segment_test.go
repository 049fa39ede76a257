package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/tallyhq/tally"
)

// genRecords makes n records of dims components with pipeline-shaped ids
// and a few metadata fields of every kind.
func genRecords(n, dims int, seed uint64) []Record {
	r := rand.New(rand.NewPCG(seed, 1))
	recs := make([]Record, n)
	for i := range recs {
		v := make([]float32, dims)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		meta := map[string]any{
			"image_id":   fmt.Sprintf("%08x-aaaa-bbbb-cccc-%012x", seed, i/7),
			"receipt_id": float64(i%3 + 1),
			"line_id":    i, // an int: stored as float64
			"valid":      i%2 == 0,
		}
		if i%5 == 0 {
			meta["label"] = "GRAND_TOTAL"
		}
		if i%11 == 0 {
			meta = nil
		}
		recs[i] = Record{
			ID:     fmt.Sprintf("IMAGE#%08x-aaaa-bbbb-cccc-%012x#RECEIPT#%05d#LINE#%05d", seed, i/7, i%3+1, i),
			Vector: v,
			Meta:   meta,
		}
	}
	// Shuffle so input order differs from id order.
	r.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	return recs
}

func write(t testing.TB, dims int, recs []Record, tombs []string, opts BuildOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	info, err := Write(&buf, dims, recs, tombs, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if info.Bytes != int64(buf.Len()) || info.Count != len(recs) || info.Dims != dims {
		t.Fatalf("Write info %+v, wrote %d bytes of %d records", info, buf.Len(), len(recs))
	}
	return buf.Bytes()
}

// normMeta is what Meta should return for m: numbers as float64, nil for
// no fields.
func normMeta(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := map[string]any{}
	for k, v := range m {
		if f, ok := toFloat(v); ok {
			v = f
		}
		out[k] = v
	}
	return out
}

func checkSegment(t *testing.T, s *Segment, dims int, recs []Record, tombs []string, opts BuildOptions) {
	t.Helper()
	if s.Len() != len(recs) || s.Dims() != dims {
		t.Fatalf("Len %d Dims %d, want %d %d", s.Len(), s.Dims(), len(recs), dims)
	}
	for i, r := range recs {
		if got := s.ID(i); got != r.ID {
			t.Fatalf("ID(%d) = %q, want %q", i, got, r.ID)
		}
		v := s.Vector(i)
		if len(v) != dims || cap(v) != dims {
			t.Fatalf("Vector(%d) len %d cap %d", i, len(v), cap(v))
		}
		for j := range v {
			if math.Float32bits(v[j]) != math.Float32bits(r.Vector[j]) {
				t.Fatalf("Vector(%d)[%d] = %v, want %v", i, j, v[j], r.Vector[j])
			}
		}
		if got, want := s.Meta(i), normMeta(r.Meta); !reflect.DeepEqual(got, want) {
			t.Fatalf("Meta(%d) = %v, want %v", i, got, want)
		}
		for k, want := range normMeta(r.Meta) {
			v, ok := s.MetaField(i, k)
			if !ok || v.Any() != want || !v.Equal(want) {
				t.Fatalf("MetaField(%d, %q) = %v %v, want %v", i, k, v.Any(), ok, want)
			}
		}
		if _, ok := s.MetaField(i, "no-such-field"); ok {
			t.Fatalf("MetaField(%d, missing) found", i)
		}
		if j, ok := s.Lookup(r.ID); !ok || j != i {
			t.Fatalf("Lookup(%q) = %d %v, want %d", r.ID, j, ok, i)
		}
		if s.HasQuantized() != opts.Quantize {
			t.Fatalf("HasQuantized = %v", s.HasQuantized())
		}
		if opts.Quantize {
			codes, scale := s.Quantized(i)
			if len(codes) != dims {
				t.Fatalf("Quantized(%d) has %d codes", i, len(codes))
			}
			for j, c := range codes {
				if d := math.Abs(float64(c)*float64(scale) - float64(r.Vector[j])); d > float64(scale)/2*1.0001+1e-7 {
					t.Fatalf("Quantized(%d)[%d] = %d×%g, want ≈ %g", i, j, c, scale, r.Vector[j])
				}
			}
		} else if codes, scale := s.Quantized(i); codes != nil || scale != 0 {
			t.Fatalf("Quantized without the section = %v, %v", codes, scale)
		}
		rec := s.Record(i)
		if rec.ID != r.ID || !slices.Equal(rec.Vector, r.Vector) {
			t.Fatalf("Record(%d) = %+v", i, rec)
		}
	}
	for _, missing := range []string{"", "A", "IMAGE#", "IMAGE#zzzz", "\xff"} {
		if i, ok := s.Lookup(missing); ok {
			t.Fatalf("Lookup(%q) = %d, want not found", missing, i)
		}
	}
	want := slices.Compact(slices.Sorted(slices.Values(tombs)))
	if got := s.Tombstones(); !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Fatalf("Tombstones = %q, want %q", got, want)
	}
	for _, id := range want {
		if !s.Deletes(id) {
			t.Fatalf("Deletes(%q) = false", id)
		}
	}
	if s.Deletes("not-deleted") {
		t.Fatal("Deletes(not-deleted) = true")
	}
	if !bytes.Equal(s.Graph(), opts.Graph) || (len(opts.Graph) == 0) != (s.Graph() == nil) {
		t.Fatalf("Graph = %q, want %q", s.Graph(), opts.Graph)
	}
	if info := s.Info(); info.Count != len(recs) || info.Dims != dims || info.Tombstones != len(want) {
		t.Fatalf("Info = %+v", info)
	}
}

type shape struct {
	name  string
	dims  int
	recs  []Record
	tombs []string
	opts  BuildOptions
}

func shapes() []shape {
	graph := []byte("opaque ANN graph bytes \x00\x01\x02")
	unicode := []Record{
		{ID: "IMAGE#é#RECEIPT#00001#LINE#00001", Vector: []float32{1, 0, 0}, Meta: map[string]any{"text": "café ☕", "名前": "東京"}},
		{ID: "日本語#🧾", Vector: []float32{0, -1, 0.5}, Meta: map[string]any{"text": ""}},
		{ID: "a", Vector: []float32{0, 0, 0}},
	}
	return []shape{
		{"plain", 16, genRecords(50, 16, 1), nil, BuildOptions{}},
		{"quantized", 17, genRecords(40, 17, 2), nil, BuildOptions{Quantize: true}},
		{"graph", 8, genRecords(10, 8, 3), nil, BuildOptions{Graph: graph}},
		{"tombstones", 4, genRecords(5, 4, 4), []string{"gone#2", "gone#1", "gone#2"}, BuildOptions{}},
		{"all", 33, genRecords(64, 33, 5), []string{"x", "y"}, BuildOptions{Quantize: true, Graph: graph}},
		{"unicode", 3, unicode, []string{"削除#1"}, BuildOptions{Quantize: true}},
		{"delete-only", 512, nil, []string{"IMAGE#1#RECEIPT#00001#LINE#00001", "IMAGE#1#RECEIPT#00001#LINE#00002"}, BuildOptions{}},
		{"empty", 1, nil, nil, BuildOptions{Quantize: true}},
		{"one", 1, []Record{{ID: "only", Vector: []float32{-2.5}}}, nil, BuildOptions{Quantize: true}},
		{"max-dims", MaxDims, genRecords(2, MaxDims, 6), nil, BuildOptions{Quantize: true}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, sh := range shapes() {
		t.Run(sh.name, func(t *testing.T) {
			data := write(t, sh.dims, sh.recs, sh.tombs, sh.opts)
			for _, opts := range []ParseOptions{{}, {SkipVerify: true}} {
				s, err := ParseWith(data, opts)
				if err != nil {
					t.Fatalf("Parse(%+v): %v", opts, err)
				}
				checkSegment(t, s, sh.dims, sh.recs, sh.tombs, sh.opts)
				if err := s.Verify(); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
		})
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	recs := genRecords(30, 8, 9)
	a := write(t, 8, recs, []string{"b", "a"}, BuildOptions{Quantize: true})
	b := write(t, 8, recs, []string{"a", "b", "a"}, BuildOptions{Quantize: true})
	if !bytes.Equal(a, b) {
		t.Fatal("same input, different bytes")
	}
}

func TestSectionsAligned(t *testing.T) {
	data := write(t, 7, genRecords(9, 7, 3), []string{"t"}, BuildOptions{Quantize: true, Graph: []byte{1, 2, 3}})
	s, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.entries) != 9 {
		t.Fatalf("%d sections", len(s.entries))
	}
	for _, e := range s.entries {
		if e.offset%align != 0 {
			t.Errorf("section %s at %d", sectionName(e.kind), e.offset)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	ok := func() []Record {
		return []Record{{ID: "a", Vector: []float32{1, 2}}, {ID: "b", Vector: []float32{3, 4}}}
	}
	with := func(f func(r []Record) []Record) []Record { return f(ok()) }
	nan := float32(math.NaN())
	inf := float32(math.Inf(-1))
	cases := []struct {
		name  string
		dims  int
		recs  []Record
		tombs []string
		want  string
	}{
		{"zero dims", 0, nil, nil, "dims 0"},
		{"negative dims", -3, nil, nil, "dims -3"},
		{"too many dims", MaxDims + 1, nil, nil, "dims 8193"},
		{"short vector", 2, with(func(r []Record) []Record { r[1].Vector = []float32{1}; return r }), nil, "vector has 1 components, want 2"},
		{"long vector", 2, with(func(r []Record) []Record { r[0].Vector = []float32{1, 2, 3}; return r }), nil, "vector has 3 components"},
		{"nil vector", 2, with(func(r []Record) []Record { r[0].Vector = nil; return r }), nil, "vector has 0 components"},
		{"NaN", 2, with(func(r []Record) []Record { r[1].Vector[1] = nan; return r }), nil, "component 1 is NaN"},
		{"Inf", 2, with(func(r []Record) []Record { r[0].Vector[0] = inf; return r }), nil, "component 0 is -Inf"},
		{"duplicate id", 2, with(func(r []Record) []Record { return append(r, Record{ID: "a", Vector: []float32{0, 0}}) }), nil, `duplicate id "a" (records 0 and 2)`},
		{"empty id", 2, with(func(r []Record) []Record { r[1].ID = ""; return r }), nil, "record 1: empty id"},
		{"empty tombstone", 2, ok(), []string{"x", ""}, "empty tombstone"},
		{"upsert and delete", 2, ok(), []string{"b"}, `"b" is both upserted and deleted`},
		{"meta struct", 2, with(func(r []Record) []Record { r[0].Meta = map[string]any{"k": struct{}{}}; return r }), nil, `meta "k": unsupported value type struct {}`},
		{"meta slice", 2, with(func(r []Record) []Record { r[0].Meta = map[string]any{"k": []string{"x"}}; return r }), nil, "unsupported value type []string"},
		{"meta nil", 2, with(func(r []Record) []Record { r[0].Meta = map[string]any{"k": nil}; return r }), nil, "nil value"},
		{"meta NaN", 2, with(func(r []Record) []Record { r[0].Meta = map[string]any{"k": math.NaN()}; return r }), nil, "not finite"},
		{"meta huge int", 2, with(func(r []Record) []Record { r[0].Meta = map[string]any{"k": int64(1<<53 + 1)}; return r }), nil, "does not fit a float64"},
		{"meta huge uint", 2, with(func(r []Record) []Record { r[0].Meta = map[string]any{"k": uint64(math.MaxUint64)}; return r }), nil, "does not fit a float64"},
		{"meta empty key", 2, with(func(r []Record) []Record { r[1].Meta = map[string]any{"": "x"}; return r }), nil, "empty meta key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := Write(&buf, c.dims, c.recs, c.tombs, BuildOptions{Quantize: true})
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to mention %q", err, c.want)
			}
			if buf.Len() != 0 {
				t.Fatalf("rejected Write wrote %d bytes", buf.Len())
			}
		})
	}
}

func TestWriteAcceptsNumericTypes(t *testing.T) {
	meta := map[string]any{"i": 1, "i8": int8(-2), "i16": int16(3), "i32": int32(4), "i64": int64(1 << 53), "u": uint(6), "u8": uint8(7), "u16": uint16(8), "u32": uint32(9), "u64": uint64(10), "f32": float32(0.5)}
	data := write(t, 1, []Record{{ID: "x", Vector: []float32{1}, Meta: meta}}, nil, BuildOptions{})
	s, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Meta(0), normMeta(meta); !reflect.DeepEqual(got, want) {
		t.Fatalf("Meta = %v, want %v", got, want)
	}
	if got := s.MetaKeys(); !slices.IsSorted(got) || len(got) != len(meta) {
		t.Fatalf("MetaKeys = %q", got)
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		return 0, io.ErrShortWrite
	}
	w.after -= len(p)
	return len(p), nil
}

func TestWriteIOError(t *testing.T) {
	recs := genRecords(300, 64, 1)
	for _, after := range []int{0, 100, 70000} {
		_, err := Write(&failWriter{after: after}, 64, recs, nil, BuildOptions{})
		if !errors.Is(err, io.ErrShortWrite) || errors.Is(err, tally.ErrInvalidArgument) {
			t.Fatalf("after %d: err = %v", after, err)
		}
	}
}

func TestValue(t *testing.T) {
	data := write(t, 1, []Record{{ID: "x", Vector: []float32{1}, Meta: map[string]any{"s": "abc", "n": 2.0, "t": true, "f": false}}}, nil, BuildOptions{})
	s, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	get := func(k string) Value {
		v, ok := s.MetaField(0, k)
		if !ok {
			t.Fatalf("MetaField(%q) missing", k)
		}
		return v
	}
	if v := get("s"); v.Kind() != KindString || v.String() != "abc" || !v.Equal("abc") || v.Equal("ab") || v.Equal(2.0) {
		t.Errorf("s = %+v", v)
	}
	if v := get("n"); v.Kind() != KindNumber || v.Float() != 2 || !v.Equal(2) || !v.Equal(uint8(2)) || !v.Equal(float32(2)) || v.Equal("2") || v.Equal(true) {
		t.Errorf("n = %+v", v)
	}
	if v := get("t"); v.Kind() != KindBool || !v.Bool() || !v.Equal(true) || v.Equal(false) || v.Equal(1) {
		t.Errorf("t = %+v", v)
	}
	if v := get("f"); !v.Equal(false) || v.Equal(nil) {
		t.Errorf("f = %+v", v)
	}
	if (Value{}).Any() != nil {
		t.Error("zero Value.Any() != nil")
	}
}

func TestAccessorsDoNotAllocate(t *testing.T) {
	recs := genRecords(200, 8, 7)
	s, err := Parse(write(t, 8, recs, []string{"t1", "t2"}, BuildOptions{Quantize: true}))
	if err != nil {
		t.Fatal(err)
	}
	id := recs[123].ID
	var sink float32
	allocs := testing.AllocsPerRun(100, func() {
		i, _ := s.Lookup(id)
		v, _ := s.MetaField(i, "label")
		if v.Equal("GRAND_TOTAL") || s.Deletes("t2") {
			sink += Dot(s.Vector(i), s.Vector(0))
		}
		q, sc := s.Quantized(i)
		sink += float32(DotInt8(q, q)) * sc
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per lookup+filter+score", allocs)
	}
	_ = sink
}

// TestDecodeFallback forces the big-endian path (decode instead of alias) in
// both Write and Parse, and the unaligned-memory path.
func TestDecodeFallback(t *testing.T) {
	recs := genRecords(20, 5, 8)
	aligned := write(t, 5, recs, nil, BuildOptions{Quantize: true})

	t.Run("unaligned", func(t *testing.T) {
		buf := make([]byte, len(aligned)+1)
		data := buf[1:]
		copy(data, aligned)
		s, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		base := uintptr(unsafe.Pointer(&data[0]))
		if p := uintptr(unsafe.Pointer(&s.Vector(0)[0])); p >= base && p < base+uintptr(len(data)) {
			t.Fatal("misaligned vectors aliased instead of decoded")
		}
		checkSegment(t, s, 5, recs, nil, BuildOptions{Quantize: true})
	})
	t.Run("big-endian host", func(t *testing.T) {
		nativeLE = false
		defer func() { nativeLE = true }()
		data := write(t, 5, recs, nil, BuildOptions{Quantize: true})
		if !bytes.Equal(data, aligned) {
			t.Fatal("encoding path wrote different bytes")
		}
		s, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if unsafe.SliceData(s.Vector(0)) == (*float32)(unsafe.Pointer(&data[0])) {
			t.Fatal("impossible alias")
		}
		checkSegment(t, s, 5, recs, nil, BuildOptions{Quantize: true})
	})
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	recs := genRecords(100, 32, 11)
	opts := BuildOptions{Quantize: true, Graph: []byte("graph")}
	path := filepath.Join(dir, "seg")
	if err := os.WriteFile(path, write(t, 32, recs, []string{"dead"}, opts), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, po := range []ParseOptions{{}, {SkipVerify: true}} {
		s, err := OpenFileWith(path, po)
		if err != nil {
			t.Fatal(err)
		}
		checkSegment(t, s, 32, recs, []string{"dead"}, opts)
		// Vectors are used in place: Vector(i) points into the mapping.
		base := uintptr(unsafe.Pointer(unsafe.SliceData(s.data)))
		p := uintptr(unsafe.Pointer(unsafe.SliceData(s.Vector(7))))
		if p < base || p >= base+uintptr(len(s.data)) {
			t.Fatal("Vector does not alias the mapped file")
		}
		id := s.ID(3)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if id != recs[3].ID { // ids are copies, valid after Close
			t.Fatal("ID changed after Close")
		}
	}

	if _, err := OpenFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	for name, content := range map[string][]byte{"empty": {}, "short": []byte("TALLY"), "text": []byte(strings.Repeat("hello world\n", 20))} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := OpenFile(p)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: err = %v, want ErrCorrupt naming the path", name, err)
		}
	}
}

func TestQuantize(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, dims := range []int{1, 7, 8, 9, 512} {
		v := make([]float32, dims)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		q := make([]int8, dims)
		scale := Quantize(q, v)
		var maxAbs float32
		for _, x := range v {
			maxAbs = max(maxAbs, float32(math.Abs(float64(x))))
		}
		if scale != maxAbs/127 {
			t.Fatalf("scale %v, want %v", scale, maxAbs/127)
		}
		hitMax := false
		for i, c := range q {
			if c < -127 {
				t.Fatalf("code %d", c)
			}
			hitMax = hitMax || c == 127 || c == -127
			if d := math.Abs(float64(c)*float64(scale) - float64(v[i])); d > float64(scale)/2*1.0001 {
				t.Fatalf("dims %d: component %d: %v vs %v", dims, i, float32(c)*scale, v[i])
			}
		}
		if !hitMax {
			t.Fatalf("dims %d: no code reaches ±127", dims)
		}
	}
	q := []int8{5, 5, 5}
	if s := Quantize(q, []float32{0, 0, 0}); s != 0 || !slices.Equal(q, []int8{0, 0, 0}) {
		t.Fatalf("zero vector: %v %v", s, q)
	}
}

func TestDot(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for n := 0; n <= 40; n++ {
		a, b := make([]float32, n), make([]float32, n+3) // b may be longer
		qa, qb := make([]int8, n), make([]int8, n+3)
		for i := range a {
			a[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			qa[i], qb[i] = int8(r.IntN(255)-127), int8(r.IntN(255)-127)
		}
		var want float64
		var wantI int32
		for i := range a {
			want += float64(a[i]) * float64(b[i])
			wantI += int32(qa[i]) * int32(qb[i])
		}
		if got := Dot(a, b); math.Abs(float64(got)-want) > 1e-4*(1+math.Abs(want)) {
			t.Fatalf("n=%d: Dot %v, want %v", n, got, want)
		}
		if got := DotInt8(qa, qb); got != wantI {
			t.Fatalf("n=%d: DotInt8 %d, want %d", n, got, wantI)
		}
	}
	// Worst case cannot overflow: MaxDims × 127 × 127 and even -128 codes.
	a := make([]int8, MaxDims)
	for i := range a {
		a[i] = -128
	}
	if got := DotInt8(a, a); got != MaxDims*128*128 {
		t.Fatalf("DotInt8 extreme = %d", got)
	}
}

func TestApproximateDotRanks(t *testing.T) {
	// The int8 first pass should agree closely with exact scores.
	recs := genRecords(50, 128, 12)
	s, err := Parse(write(t, 128, recs, nil, BuildOptions{Quantize: true}))
	if err != nil {
		t.Fatal(err)
	}
	qa, sa := s.Quantized(0)
	for i := 1; i < s.Len(); i++ {
		exact := Dot(s.Vector(0), s.Vector(i))
		qb, sb := s.Quantized(i)
		approx := float32(DotInt8(qa, qb)) * sa * sb
		if math.Abs(float64(exact-approx)) > 0.05*math.Sqrt(128) {
			t.Fatalf("record %d: exact %v approx %v", i, exact, approx)
		}
	}
}
