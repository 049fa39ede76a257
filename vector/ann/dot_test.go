package ann

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestDotMatchesReference checks the kernel in use (assembly where the CPU
// has it) against the portable loop, for every length class the loops
// split on: empty, scalar tail only, one and several 8-lane steps, 32-lane
// blocks with every remainder, and the embedding sizes.
func TestDotMatchesReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{0, 1, 3, 7, 8, 9, 15, 16, 31, 32, 33, 40, 63, 64, 65, 100, 255, 384, 512, 768, 1536, 3072}
	for _, n := range lengths {
		a, b := make([]float32, n), make([]float32, n+5) // b longer: only n are read
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		var exact float64
		var mag float64
		for i := range a {
			exact += float64(a[i]) * float64(b[i])
			mag += math.Abs(float64(a[i]) * float64(b[i]))
		}
		for name, f := range map[string]func(a, b []float32) float32{"dot": dot, "dotGo": dotGo} {
			got := float64(f(a, b))
			if tol := 1e-5*mag + 1e-6; math.Abs(got-exact) > tol {
				t.Errorf("%s over %d floats = %v, want %v ± %g", name, n, got, exact, tol)
			}
		}
	}
}

func BenchmarkDot(b *testing.B) {
	for _, n := range []int{512, 1536} {
		x, y := randomUnit(1, n, 3), randomUnit(1, n, 4)
		for name, f := range map[string]func(a, b []float32) float32{"kernel": dot, "go": dotGo} {
			b.Run(name+"-"+strconv.Itoa(n), func(b *testing.B) {
				var s float32
				for b.Loop() {
					s += f(x, y)
				}
				_ = s
			})
		}
	}
}
