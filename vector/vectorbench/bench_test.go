package vectorbench

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// The datasets the issue asks for, plus Tally's offline (hashed) vectors.
// Each benchmark builds its data once and releases it when done, so only
// one dataset is in memory at a time.

func BenchmarkStoreEmbed10kx512(b *testing.B)   { runDataset(b, spec{"embed", 10_000, 512}) }
func BenchmarkStoreEmbed100kx512(b *testing.B)  { runDataset(b, spec{"embed", 100_000, 512}) }
func BenchmarkStoreEmbed100kx1536(b *testing.B) { runDataset(b, spec{"embed", 100_000, 1536}) }

// BenchmarkStoreEmbed1Mx512 runs only with TALLY_BENCH_1M=1: building the
// graphs of a million vectors takes many minutes on 2 cores, and the data
// (2 GB of float32) is held in memory twice (generated, and chromem-go's
// map of documents shares it but the store's files are mapped too).
func BenchmarkStoreEmbed1Mx512(b *testing.B) {
	if os.Getenv("TALLY_BENCH_1M") != "1" {
		b.Skip("set TALLY_BENCH_1M=1 to run the 1M-vector benchmark (about 30 minutes on 2 cores)")
	}
	runDataset(b, spec{"embed", 1_000_000, 512})
}

// BenchmarkStoreEmbed1Mx1536 runs only with TALLY_BENCH_1M_1536=1: 6 GB
// of vectors, held twice, and graphs three times as slow to build.
func BenchmarkStoreEmbed1Mx1536(b *testing.B) {
	if os.Getenv("TALLY_BENCH_1M_1536") != "1" {
		b.Skip("set TALLY_BENCH_1M_1536=1 to run the 1M × 1536 benchmark")
	}
	runDataset(b, spec{"embed", 1_000_000, 1536})
}

// BenchmarkStoreHashed100kx512 uses Tally's offline embedder on synthetic
// receipt lines: sparse lexical vectors with many exact duplicates.
func BenchmarkStoreHashed100kx512(b *testing.B) { runDataset(b, spec{"hashed", 100_000, 512}) }

// runDataset runs every measurement of one dataset as sub-benchmarks, in
// the order the data flows: write, compact, open, search, refresh.
func runDataset(b *testing.B, sp spec) {
	f := newFixture(sp)
	defer f.close()

	b.Run("write", func(b *testing.B) {
		b.StopTimer()
		f.graph(b)
		b.StartTimer()
		oneShot(b, f.writeDur)
		b.ReportMetric(float64(f.n)/f.writeDur.Seconds(), "vectors/s")
	})
	b.Run("compact", func(b *testing.B) {
		b.StopTimer()
		f.graph(b)
		b.StartTimer()
		oneShot(b, f.compactDur)
		b.ReportMetric(float64(f.n)/f.compactDur.Seconds(), "vectors/s")
		b.ReportMetric(float64(f.compactVersions), "versions")
		b.ReportMetric(float64(f.compactSegments), "segments")
	})
	b.Run("maintain", func(b *testing.B) {
		b.StopTimer()
		f.graph(b)
		b.StartTimer()
		oneShot(b, f.maintainDur)
		b.ReportMetric(float64(f.n)/f.maintainDur.Seconds(), "vectors/s")
		b.ReportMetric(float64(f.maintained.Merges), "merges")
		b.ReportMetric(float64(f.maintained.Merged), "merged-segments")
		b.ReportMetric(float64(f.maintained.Graphs), "graph-builds")
		b.ReportMetric(float64(f.segments), "segments")
		b.ReportMetric(float64(f.graphSegments), "graph-segments")
	})
	b.Run("cold-open", func(b *testing.B) {
		b.StopTimer()
		f.open(b)
		b.StartTimer()
		oneShot(b, f.coldOpen)
		b.ReportMetric(ms(f.coldOpen), "cold-open-ms")
		b.ReportMetric(float64(f.coldB), "cold-fetch-bytes")
		b.ReportMetric(float64(f.coldF), "cold-fetch-files")
		b.ReportMetric(percentile(f.firstLat, 50), "first-p50-ms")
		b.ReportMetric(percentile(f.firstLat, 99), "first-p99-ms")
		b.ReportMetric(ms(f.firstAnswer), "progressive-first-answer-ms")
		b.ReportMetric(float64(f.firstAnswerB), "progressive-fetch-bytes")
		b.ReportMetric(float64(f.readerRSS), "reader-rss-bytes")
		b.ReportMetric(float64(f.readerRSS)/float64(f.n*f.dims*4), "rss-per-vector-byte")
	})
	b.Run("exact-scan", func(b *testing.B) {
		b.StopTimer()
		f.data(b)
		b.StartTimer()
		var total time.Duration
		for _, d := range f.scanLat {
			total += d
		}
		oneShot(b, total)
		b.ReportMetric(percentile(f.scanLat, 50), "p50-ms")
		b.ReportMetric(percentile(f.scanLat, 99), "p99-ms")
	})
	b.Run("chromem", func(b *testing.B) {
		f.chromemColl(b)
		var lat []time.Duration
		var got [][]int
		for b.Loop() {
			r := f.searchChromem(b, &lat)
			if got == nil {
				got = r
			}
		}
		f.chromemLat = lat
		f.chromemRec = f.meanRecall(got)
		b.ReportMetric(percentile(lat, 50), "p50-ms")
		b.ReportMetric(percentile(lat, 99), "p99-ms")
		b.ReportMetric(f.chromemRec, "recall@10")
		b.ReportMetric(f.chromemAdd.Seconds(), "load-s")
	})
	// A search runs its big segments on every core; the 1cpu row holds it
	// to one (GOMAXPROCS 1), like the exact scan it is compared with.
	for _, row := range []struct {
		ef    int
		procs int
	}{{64, 0}, {128, 0}, {64, 1}} {
		name := "search-ef" + strconv.Itoa(row.ef)
		if row.procs == 1 {
			name += "-1cpu"
		}
		b.Run(name, func(b *testing.B) {
			ef := row.ef
			f.open(b)
			f.data(b)
			if row.procs > 0 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(row.procs))
			}
			var lat []time.Duration
			var got [][]int
			for b.Loop() {
				r := f.searchTally(b, ef, &lat)
				if got == nil {
					got = r
				}
			}
			p50 := percentile(lat, 50)
			b.ReportMetric(p50, "p50-ms")
			b.ReportMetric(percentile(lat, 99), "p99-ms")
			b.ReportMetric(f.meanRecall(got), "recall@10")
			b.ReportMetric(percentile(f.scanLat, 50)/p50, "scan-speedup-x")
			if len(f.chromemLat) > 0 {
				b.ReportMetric(percentile(f.chromemLat, 50)/p50, "speedup-x")
			}
		})
	}
	b.Run("warm-refresh", func(b *testing.B) {
		b.StopTimer()
		f.warmRefresh(b)
		b.StartTimer()
		w := f.warm
		oneShot(b, w.refresh)
		b.ReportMetric(float64(w.fetchedB), "warm-fetch-bytes")
		b.ReportMetric(float64(w.fetchedF), "warm-fetch-files")
		b.ReportMetric(float64(w.newSegB), "new-seg-bytes")
		b.ReportMetric(float64(f.coldB), "cold-fetch-bytes")
		b.ReportMetric(float64(w.compactorB), "compactor-fetch-bytes")
		b.ReportMetric(float64(w.sidecarB), "sidecar-bytes")
		b.ReportMetric(float64(w.newDeltaB), "delta-bytes")
		b.ReportMetric(ms(w.compact), "compact-ms")
		b.ReportMetric(ms(w.searchable), "searchable-pending-ms")
		b.ReportMetric(ms(w.searchableCompacted), "searchable-compacted-ms")
	})
}

// oneShot reports a measurement taken once per process (in a fixture
// stage) as the row's ns/op; the row's iteration count means nothing.
func oneShot(b *testing.B, d time.Duration) {
	b.ReportMetric(float64(d.Nanoseconds()), "ns/op")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
