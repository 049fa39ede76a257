package vector

import "testing"

func TestEfForWidensWithTheGraph(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ ef, n, want int }{
		{64, 5_000, 64},
		{64, 100_000, 64},
		{64, 200_000, 80},   // one doubling: a quarter more
		{64, 320_000, 90},   // the merge cap
		{128, 400_000, 192}, // two doublings
	} {
		if got := efFor(tc.ef, tc.n); got != tc.want {
			t.Errorf("efFor(%d, %d) = %d, want %d", tc.ef, tc.n, got, tc.want)
		}
	}
}
