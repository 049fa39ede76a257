package ann

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// Benchmarks run on embedding-like data (the realistic case) at 10k and
// 100k×512, plus uniformly random vectors at 10k (the hard case). 1M runs
// only with TALLY_BENCH_1M=1: building it takes many minutes on 2 cores.
// Suggested: go test -run XXX -bench . -benchtime 2000x ./vector/ann/

type benchSet struct {
	name          string
	n             int
	vecs, queries []float32
	truth         [][]Hit
	once          sync.Once
	g             *Graph
	buildTime     time.Duration
}

const benchQueries = 200

var benchSets = map[string]*benchSet{}
var benchMu sync.Mutex

func benchSizes() []int {
	if os.Getenv("TALLY_BENCH_1M") == "1" {
		return []int{10_000, 100_000, 1_000_000}
	}
	return []int{10_000, 100_000}
}

func benchKinds(n int) []string {
	if n <= 10_000 {
		return []string{"embed", "random"}
	}
	return []string{"embed"}
}

// getBenchSet generates (once) data, held-out queries and exact answers.
func getBenchSet(b *testing.B, kind string, n int) *benchSet {
	benchMu.Lock()
	defer benchMu.Unlock()
	key := fmt.Sprintf("%s-%d", kind, n)
	if s, ok := benchSets[key]; ok {
		return s
	}
	var all []float32
	if kind == "random" {
		all = randomUnit(n+benchQueries, testDims, 31)
	} else {
		all = embeddingLike(n+benchQueries, testDims, 31)
	}
	s := &benchSet{name: key, n: n, vecs: all[:n*testDims], queries: all[n*testDims:]}
	for i := range benchQueries {
		s.truth = append(s.truth, BruteForce(s.vecs, testDims, s.queries[i*testDims:(i+1)*testDims], 10, nil))
	}
	benchSets[key] = s
	return s
}

// graph returns the set's graph, built with default parameters, reusing
// the one BenchmarkBuild made when it ran first.
func (s *benchSet) graph(b *testing.B) *Graph {
	s.once.Do(func() {
		if s.g != nil {
			return
		}
		start := time.Now()
		g, err := Build(context.Background(), s.vecs, testDims, Params{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		s.g, s.buildTime = g, time.Since(start)
		b.Logf("%s: built in %v (%.0f vectors/s)", s.name, s.buildTime.Round(time.Millisecond), float64(s.n)/s.buildTime.Seconds())
	})
	return s.g
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range benchSizes() {
		for _, kind := range benchKinds(n) {
			b.Run(fmt.Sprintf("%s/n=%d", kind, n), func(b *testing.B) {
				s := getBenchSet(b, kind, n)
				b.ResetTimer()
				var g *Graph
				for b.Loop() {
					var err error
					if g, err = Build(context.Background(), s.vecs, testDims, Params{Seed: 1}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "vectors/s")
				benchMu.Lock()
				if s.g == nil {
					s.g = g
				}
				benchMu.Unlock()
			})
		}
	}
}

func BenchmarkSearch(b *testing.B) {
	for _, n := range benchSizes() {
		for _, kind := range benchKinds(n) {
			efs := []int{32, 64, 128}
			if kind == "random" {
				efs = []int{128, 512}
			}
			for _, ef := range efs {
				b.Run(fmt.Sprintf("%s/n=%d/ef=%d", kind, n, ef), func(b *testing.B) {
					s := getBenchSet(b, kind, n)
					g := s.graph(b)
					lat := make([]time.Duration, 0, 4096)
					b.ResetTimer()
					i := 0
					for b.Loop() {
						q := s.queries[(i%benchQueries)*testDims:][:testDims]
						t0 := time.Now()
						g.Search(s.vecs, q, 10, ef, nil)
						if len(lat) < cap(lat) {
							lat = append(lat, time.Since(t0))
						}
						i++
					}
					b.StopTimer()
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
					b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
					b.ReportMetric(s.recall(g, ef, nil), "recall@10")
				})
			}
		}
	}
}

// BenchmarkSearchFiltered measures a walk with half the nodes accepted and
// a 1%-selective filter (answered by the exact scan).
func BenchmarkSearchFiltered(b *testing.B) {
	for _, n := range benchSizes() {
		for _, sel := range []int{2, 10, 100} {
			b.Run(fmt.Sprintf("embed/n=%d/accept=1in%d", n, sel), func(b *testing.B) {
				s := getBenchSet(b, "embed", n)
				g := s.graph(b)
				accept := func(i int) bool { return (i*7919)%sel == 1 }
				i := 0
				for b.Loop() {
					g.Search(s.vecs, s.queries[(i%benchQueries)*testDims:][:testDims], 10, 64, accept)
					i++
				}
			})
		}
	}
}

func BenchmarkBruteForce(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			s := getBenchSet(b, "embed", n)
			i := 0
			for b.Loop() {
				BruteForce(s.vecs, testDims, s.queries[(i%benchQueries)*testDims:][:testDims], 10, nil)
				i++
			}
		})
	}
}

// recall is the mean recall@10 of Search at ef against the exact answers.
func (s *benchSet) recall(g *Graph, ef int, accept func(int) bool) float64 {
	var hit, total int
	for i, truth := range s.truth {
		got := g.Search(s.vecs, s.queries[i*testDims:(i+1)*testDims], 10, ef, accept)
		for _, h := range got {
			if slices.ContainsFunc(truth, func(t Hit) bool { return t.Index == h.Index }) {
				hit++
			}
		}
		total += len(truth)
	}
	return float64(hit) / float64(total)
}

// BenchmarkExtend compares growing a 10k graph by 1k vectors with
// building the 11k graph whole: what a merge that extends its largest
// input's graph saves. vectors/s counts the vectors inserted.
func BenchmarkExtend(b *testing.B) {
	const base, more = 10_000, 1_000
	vecs := embeddingLike(base+more, testDims, 41)
	ctx := context.Background()
	g, err := Build(ctx, vecs[:base*testDims], testDims, Params{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("extend-10k-by-1k", func(b *testing.B) {
		for b.Loop() {
			if _, err := Extend(ctx, g, vecs, testDims, Params{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(more*b.N)/b.Elapsed().Seconds(), "vectors/s")
	})
	b.Run("build-11k", func(b *testing.B) {
		for b.Loop() {
			if _, err := Build(ctx, vecs, testDims, Params{Seed: 1}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((base+more)*b.N)/b.Elapsed().Seconds(), "vectors/s")
	})
}
