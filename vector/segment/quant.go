package segment

import "math"

const signBit = 1 << 31

// Quantize writes v's int8 symmetric quantization to dst (which must hold
// len(v) codes) and returns the scale: code = round(x / scale) with scale =
// max|x| / 127, so x ≈ code × scale and every code is in -127..127. An
// all-zero vector gets scale 0 and zero codes. Queries are quantized with
// the same function before a DotInt8 first pass. v must be finite.
func Quantize(dst []int8, v []float32) float32 {
	dst = dst[:len(v)]
	// Branch-free on purpose: signs of embedding components are random, so
	// branches on them mispredict half the time (measured 16 ns/component
	// with branches, about 1 without).
	// For non-negative floats the bit patterns order like the values, so
	// max|x| is an integer max (a conditional move, no NaN handling).
	var mb uint32
	for _, x := range v {
		mb = max(mb, math.Float32bits(x)&^signBit)
	}
	m := math.Float32frombits(mb)
	if m == 0 {
		clear(dst)
		return 0
	}
	inv := 127 / m
	for i, x := range v {
		q := x * inv
		half := math.Float32frombits(math.Float32bits(q)&signBit | 0x3f000000) // ±0.5
		dst[i] = int8(min(max(int32(q+half), -127), 127))
	}
	return m / 127
}

// Dot returns the inner product of a and b over len(a) components (b must be
// at least as long). It is the exact float32 kernel for rescoring; plain Go
// unrolled by 8 with four independent accumulators, which breaks the
// floating-point add dependency chain that limits a naive loop.
func Dot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		x := a[i : i+8 : i+8]
		y := b[i : i+8 : i+8]
		s0 += x[0]*y[0] + x[4]*y[4]
		s1 += x[1]*y[1] + x[5]*y[5]
		s2 += x[2]*y[2] + x[6]*y[6]
		s3 += x[3]*y[3] + x[7]*y[7]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// DotInt8 returns the inner product of two int8 code vectors over len(a)
// components (b must be at least as long). With codes in -127..127 the sum
// cannot overflow int32 for any width up to MaxDims. Multiply by both
// scales to approximate the float32 dot product.
func DotInt8(a, b []int8) int32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+8 <= n; i += 8 {
		x := a[i : i+8 : i+8]
		y := b[i : i+8 : i+8]
		s0 += int32(x[0])*int32(y[0]) + int32(x[4])*int32(y[4])
		s1 += int32(x[1])*int32(y[1]) + int32(x[5])*int32(y[5])
		s2 += int32(x[2])*int32(y[2]) + int32(x[6])*int32(y[6])
		s3 += int32(x[3])*int32(y[3]) + int32(x[7])*int32(y[7])
	}
	for ; i < n; i++ {
		s0 += int32(a[i]) * int32(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}
