// Package vectorbench holds the vector store's end-to-end benchmarks; it has
// no non-test code and nothing imports it.
//
// Each dataset benchmark (BenchmarkStoreEmbed10kx512, ...) builds its data
// once per process, then drives the public vector.Store API the way Tally
// does: deltas of 1000 records written with WriteDelta, compacted under a
// lease (once without ANN graphs, once with them), a reader cold-opened on
// an empty cache directory, 200 held-out queries through Reader.Search
// (k = 10) beside chromem-go's exact search over the same vectors, and
// finally one more small delta, compacted, after which the warm reader
// refreshes and reports the bytes it fetched. chromem-go is imported only by
// the _test.go files, so it never reaches the tally binary.
//
// Sub-benchmarks and their metrics (scripts/bench-notes.md explains how to
// read them against the goals):
//
//	write          one-shot; vectors/s through WriteDelta (1000 per delta)
//	compact-merge  one-shot; vectors/s of Compact with no graph built
//	compact-graph  one-shot; vectors/s of Compact with default HNSW graphs
//	cold-open      one-shot; cold-open-ms, cold-fetch-bytes, and the
//	               p50/p99 of the first pass of queries (page faults)
//	exact-scan     one-shot; single-goroutine ann.BruteForce p50/p99-ms
//	chromem        timed; chromem-go QueryEmbedding p50/p99-ms, recall@10
//	search-ef64    timed; Reader.Search p50/p99-ms, recall@10, speedup-x
//	               (chromem p50 / Tally p50), scan-speedup-x (exact-scan
//	               p50 / Tally p50)
//	search-ef128   the same at beam width 128
//	warm-refresh   one-shot; warm-fetch-bytes after one more compaction
//
// A timed row's op is one pass over the 200 queries; a one-shot row measures
// once per process and reports that duration as its ns/op (its iteration
// count is meaningless). The 1M dataset runs only with TALLY_BENCH_1M=1.
package vectorbench
