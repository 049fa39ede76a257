package layout

// histogram counts the gray levels of some pixels.
type histogram [256]int

func (h *histogram) total() int {
	n := 0
	for _, c := range h {
		n += c
	}
	return n
}

// percentile returns the smallest level at or below which a fraction q of the
// pixels lie (0 for an empty histogram).
func (h *histogram) percentile(q float64) int {
	n := h.total()
	if n == 0 {
		return 0
	}
	want := q * float64(n)
	acc := 0
	for level, c := range h {
		acc += c
		if float64(acc) >= want && acc > 0 {
			return level
		}
	}
	return 255
}

// otsu returns the level that best splits the histogram into dark (≤ t) and
// bright (> t) classes by maximizing the between-class variance, with the
// classes' mean levels and the bright class's share of pixels. ok is false
// when every pixel falls in one class.
func otsu(h *histogram) (t int, darkMean, brightMean, brightShare float64, ok bool) {
	n := h.total()
	if n == 0 {
		return 0, 0, 0, 0, false
	}
	var sumAll float64
	for level, c := range h {
		sumAll += float64(level * c)
	}
	var wDark int
	var sumDark, bestVar float64
	best := -1
	for level := range 255 {
		wDark += h[level]
		sumDark += float64(level * h[level])
		wBright := n - wDark
		if wDark == 0 || wBright == 0 {
			continue
		}
		md := sumDark / float64(wDark)
		mb := (sumAll - sumDark) / float64(wBright)
		v := float64(wDark) * float64(wBright) * (mb - md) * (mb - md)
		if v > bestVar {
			bestVar, best = v, level
			darkMean, brightMean, brightShare = md, mb, float64(wBright)/float64(n)
		}
	}
	if best < 0 {
		return 0, 0, 0, 0, false
	}
	return best, darkMean, brightMean, brightShare, true
}
