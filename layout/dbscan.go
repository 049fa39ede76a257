package layout

import "sort"

// noise is the cluster label of a point that belongs to no cluster.
const noise = -1

// dbscan clusters n items given each item's neighbours within the radius
// (excluding itself): an item with at least minPts−1 neighbours is a core
// item, clusters grow through core items, and items reachable from no core
// item are noise. Labels are 0-based in order of discovery.
func dbscan(n, minPts int, neighbors [][]int) []int {
	labels := make([]int, n)
	for i := range labels {
		labels[i] = -2 // unvisited
	}
	core := func(i int) bool { return len(neighbors[i])+1 >= minPts }
	next := 0
	for i := range n {
		if labels[i] != -2 {
			continue
		}
		if !core(i) {
			labels[i] = noise
			continue
		}
		c := next
		next++
		labels[i] = c
		queue := append([]int(nil), neighbors[i]...)
		for len(queue) > 0 {
			j := queue[0]
			queue = queue[1:]
			if labels[j] == noise {
				labels[j] = c // a border item
			}
			if labels[j] != -2 {
				continue
			}
			labels[j] = c
			if core(j) {
				queue = append(queue, neighbors[j]...)
			}
		}
	}
	return labels
}

// clusterIntervals groups intervals [lo[i], hi[i]] that overlap or lie less
// than gap apart, as a flatbed scan's receipts sit side by side: labels are
// 0-based from left to right.
func clusterIntervals(lo, hi []float64, gap float64) []int {
	order := make([]int, len(lo))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return lo[order[a]] < lo[order[b]] })
	labels := make([]int, len(lo))
	c, end := -1, 0.0
	for k, i := range order {
		if k == 0 || lo[i] > end+gap {
			c++
			end = hi[i]
		}
		labels[i] = c
		end = max(end, hi[i])
	}
	return labels
}
