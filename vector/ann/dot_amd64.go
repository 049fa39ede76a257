package ann

import "golang.org/x/sys/cpu"

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		dot = dotSIMD
	}
}

// dotSIMD is dot in AVX2 and FMA assembly.
//
//go:norace
func dotSIMD(a, b []float32) float32 {
	n := len(a)
	if n == 0 {
		return 0
	}
	b = b[:n]
	return dotAVX2(&a[0], &b[0], n)
}

// dotAVX2 returns the inner product of the n floats at a and b.
//
//go:noescape
func dotAVX2(a, b *float32, n int) float32
