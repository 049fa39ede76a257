package ann

// dot returns the inner product of a and b over len(a) elements. It is the
// only similarity kernel in the package, so graph search and BruteForce give
// bit-identical scores for the same pair (recall tests compare them
// directly). Four independent accumulators break the floating-point add
// dependency chain that limits a naive loop in plain Go (no SIMD); on the
// 2-core build machine this measured ~150 ns per 512-dim pair against ~275 ns
// for the naive loop, and 8 accumulators were no faster (register pressure).
//
// dot is not instrumented by the race detector (go:norace): instrumenting
// every element load made dot about 90% of the time of a race-enabled build.
// The entry points that call it (Build's workers, Search, BruteForce)
// instead report the whole vector matrix and the query as read, once per
// call, with raceReadFloats, so a write racing with them is still detected.
//
// On amd64 with AVX2 and FMA, dot is dotSIMD (dot_amd64.s): eight lanes at
// a time, four accumulators, fused multiply-adds. dotGo is the portable
// version and the reference the assembly is tested against.
var dot = dotGo

//go:norace
func dotGo(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		x := a[i : i+4 : i+4]
		y := b[i : i+4 : i+4]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
