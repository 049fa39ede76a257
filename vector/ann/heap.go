package ann

// cand is a node together with its similarity to the current query.
type cand struct {
	id    uint32
	score float32
}

// maxHeap keeps the most similar candidate on top: the frontier of a
// best-first graph walk. Hand-written rather than container/heap so the hot
// loop makes no interface calls and no allocations.
type maxHeap []cand

func (h *maxHeap) push(c cand) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].score >= s[i].score {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
	*h = s
}

func (h *maxHeap) pop() cand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		if r := l + 1; r < len(s) && s[r].score > s[l].score {
			l = r
		}
		if s[i].score >= s[l].score {
			break
		}
		s[i], s[l] = s[l], s[i]
		i = l
	}
	*h = s
	return top
}

// minHeap keeps the least similar kept result on top, so a bounded result
// set can evict its worst member in O(log n).
type minHeap []cand

func (h *minHeap) push(c cand) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !worse(s[i], s[p]) {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
	*h = s
}

func (h *minHeap) pop() cand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		if r := l + 1; r < len(s) && worse(s[r], s[l]) {
			l = r
		}
		if !worse(s[l], s[i]) {
			break
		}
		s[i], s[l] = s[l], s[i]
		i = l
	}
	*h = s
	return top
}

// worse orders results: lower score is worse, and on equal scores the higher
// index is worse, so ties resolve the same way in every code path.
func worse(a, b cand) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	return a.id > b.id
}

// offer adds c to a result heap bounded at k entries.
func (h *minHeap) offer(c cand, k int) {
	if len(*h) < k {
		h.push(c)
		return
	}
	if worse((*h)[0], c) {
		(*h)[0] = c
		h.fix0()
	}
}

// fix0 restores heap order after the root was replaced.
func (h *minHeap) fix0() {
	s := *h
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		if r := l + 1; r < len(s) && worse(s[r], s[l]) {
			l = r
		}
		if !worse(s[l], s[i]) {
			break
		}
		s[i], s[l] = s[l], s[i]
		i = l
	}
}
