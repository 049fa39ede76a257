package ann

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
)

// smallGraph returns a small multi-layer graph, its bytes and vectors.
func smallGraph(t testing.TB, n, dims, m int) (*Graph, []byte, []float32) {
	t.Helper()
	v := embeddingLike(n, dims, 21)
	g, err := Build(context.Background(), v, dims, Params{M: m, EfConstruction: 32, Seed: 9, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return g, g.MarshalBinary(), v
}

func TestLoadCorrupt(t *testing.T) {
	g, data, _ := smallGraph(t, 400, 8, 4)
	if g.maxLevel == 0 {
		t.Fatal("test graph has no upper layers; pick another seed")
	}
	n := g.Len()
	le := binary.LittleEndian
	l0 := headerSize
	offs := l0 + 4*n*(g.m0+1)
	up := offs + 4*(n+1)
	// An upper-layer record of some node with level >= 1.
	var upNode int
	for i := range n {
		if g.level(uint32(i)) >= 1 {
			upNode = i
			break
		}
	}
	upRec := up + 4*int(g.offsets[upNode])
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), data...)
		f(b)
		return b
	}
	cases := map[string][]byte{
		"empty":              nil,
		"short header":       data[:40],
		"header only":        data[:headerSize],
		"truncated":          data[:len(data)-4],
		"trailing byte":      append(append([]byte(nil), data...), 0),
		"bad magic":          mutate(func(b []byte) { b[0] ^= 1 }),
		"bad version":        mutate(func(b []byte) { le.PutUint32(b[4*hVersion:], 99) }),
		"M zero":             mutate(func(b []byte) { le.PutUint32(b[4*hM:], 0) }),
		"M0 huge":            mutate(func(b []byte) { le.PutUint32(b[4*hM0:], 1<<30) }),
		"dims zero":          mutate(func(b []byte) { le.PutUint32(b[4*hDims:], 0) }),
		"entry out of range": mutate(func(b []byte) { le.PutUint32(b[4*hEntry:], uint32(n)) }),
		"max level too big":  mutate(func(b []byte) { le.PutUint32(b[4*hMaxLevel:], 40) }),
		"max level wrong":    mutate(func(b []byte) { le.PutUint32(b[4*hMaxLevel:], uint32(g.maxLevel+1)) }),
		"upper words wrong":  mutate(func(b []byte) { le.PutUint32(b[4*hUpperWords:], 7) }),
		"reserved set":       mutate(func(b []byte) { le.PutUint32(b[4*15:], 1) }),
		"l0 count too big":   mutate(func(b []byte) { le.PutUint32(b[l0:], uint32(g.m0+1)) }),
		"l0 neighbour >= n":  mutate(func(b []byte) { le.PutUint32(b[l0+4:], uint32(n)) }),
		"l0 neighbour max":   mutate(func(b []byte) { le.PutUint32(b[l0+4:], noNode) }),
		"offsets start":      mutate(func(b []byte) { le.PutUint32(b[offs:], 1) }),
		"offsets decrease":   mutate(func(b []byte) { le.PutUint32(b[offs+4*(upNode+1):], 0) }),
		"upper count":        mutate(func(b []byte) { le.PutUint32(b[upRec:], uint32(g.m+1)) }),
		"upper neighbour":    mutate(func(b []byte) { le.PutUint32(b[upRec+4:], uint32(n+5)) }),
	}
	// An upper-layer neighbour that exists but not on that layer.
	for i := range n {
		if g.level(uint32(i)) == 0 {
			cases["upper neighbour too low"] = mutate(func(b []byte) {
				le.PutUint32(b[upRec:], 1)
				le.PutUint32(b[upRec+4:], uint32(i))
			})
			break
		}
	}
	for name, b := range cases {
		if _, err := Load(b, n); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := Load(data, n+1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong n: err = %v, want ErrCorrupt", err)
	}
	if _, err := Load(data, -1); err == nil {
		t.Error("negative n accepted")
	}
	// Every truncation is rejected.
	for cut := 0; cut < len(data); cut += 1 + cut/16 {
		if _, err := Load(data[:cut], n); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: err = %v, want ErrCorrupt", cut, err)
		}
	}
}

// FuzzLoad checks that no input makes Load or a Search on what it accepts
// panic or read out of range.
func FuzzLoad(f *testing.F) {
	for _, n := range []int{0, 1, 2, 60} {
		g, data, _ := smallGraph(f, n, 4, 2)
		f.Add(data, uint16(g.Len()))
	}
	f.Fuzz(func(t *testing.T, data []byte, n16 uint16) {
		n := int(n16)
		g, err := Load(data, n)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if g.Len() == 0 || g.Dims()*g.Len() > 1<<16 {
			return
		}
		vecs := randomUnit(n, g.Dims(), 1)
		for _, accept := range []func(int) bool{nil, func(i int) bool { return i%3 == 0 }} {
			for _, ef := range []int{1, 4, 64} {
				for _, h := range g.Search(vecs, vecs[:g.Dims()], 5, ef, accept) {
					if h.Index < 0 || h.Index >= n {
						t.Fatalf("hit %d out of range", h.Index)
					}
				}
			}
		}
	})
}
