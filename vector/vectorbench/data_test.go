package vectorbench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"

	"github.com/tallyhq/tally/embed/hashed"
)

// The embedding-like generator's shape. It re-implements the generator of
// vector/ann's bench_test.go (which is not importable) with the same
// parameters, so the two packages' numbers describe the same data.
const (
	genClusters = 64 // topics
	genRank     = 64 // directions of variation within a topic
)

// embeddingLike returns n unit vectors shaped like text embeddings, and is
// deterministic for a seed. Every vector is one of genClusters random unit
// centres plus a combination of genRank random directions private to its
// cluster, with gaussian weights whose standard deviation decays as
// 0.5/(j+1)^¼ (the slowly decaying PCA spectrum real embeddings show), plus
// isotropic noise of 0.4/√dims per coordinate, then normalized. The
// within-cluster part carries most of the energy (total variance 3.6
// against 1 for the centre and 0.16 for the noise), so a vector's cosine to
// its own centre is about 0.46, two vectors of one cluster have a cosine of
// about 0.2 and of different clusters about 0, and the intrinsic dimension
// is a few dozen, as with real sentence embeddings. It is still synthetic:
// real embeddings have many more topics, of uneven sizes, and
// near-duplicates.
// Rows are independent draws, so the caller holds queries out by generating
// extra rows and splitting them off. Generation runs on every core, each
// chunk of rows with its own seeded stream.
func embeddingLike(n, dims int, seed uint64) []float32 {
	centres := randomUnit(genClusters, dims, seed^0xce)
	basis := randomUnit(genClusters*genRank, dims, seed^0xba)
	var scale [genRank]float64
	for j := range scale {
		scale[j] = 0.5 / math.Sqrt(math.Sqrt(float64(j+1)))
	}
	iso := 0.4 / math.Sqrt(float64(dims))
	v := make([]float32, n*dims)
	const chunk = 4096
	parallelChunks(n, chunk, func(c, lo, hi int) {
		r := rand.New(rand.NewPCG(seed, uint64(c)+1))
		for i := lo; i < hi; i++ {
			cl := r.IntN(genClusters)
			row := v[i*dims : (i+1)*dims]
			copy(row, centres[cl*dims:(cl+1)*dims])
			for j := range genRank {
				a := float32(scale[j] * r.NormFloat64())
				u := basis[(cl*genRank+j)*dims:][:dims]
				for d := range row {
					row[d] += a * u[d]
				}
			}
			for d := range row {
				row[d] += float32(iso * r.NormFloat64())
			}
			normalize(row)
		}
	})
	return v
}

// randomUnit returns n uniformly random unit vectors (normalized gaussians).
func randomUnit(n, dims int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, n*dims)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	for i := 0; i < len(v); i += dims {
		normalize(v[i : i+dims])
	}
	return v
}

// normalize scales row to unit length (accumulating in float64).
func normalize(row []float32) {
	var s float64
	for _, x := range row {
		s += float64(x) * float64(x)
	}
	inv := 1 / math.Sqrt(s)
	for i, x := range row {
		row[i] = float32(float64(x) * inv)
	}
}

// parallelChunks calls fn for consecutive chunks of [0, n) on every core;
// c is the chunk's number, so per-chunk state can be seeded from it.
func parallelChunks(n, chunk int, fn func(c, lo, hi int)) {
	var next sync.Mutex
	c := 0
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				next.Lock()
				mine := c
				c++
				next.Unlock()
				lo := mine * chunk
				if lo >= n {
					return
				}
				fn(mine, lo, min(lo+chunk, n))
			}
		})
	}
	wg.Wait()
}

// receiptLines returns n synthetic receipt lines, deterministic for a seed:
// receipts of 12–30 lines from 400 merchants, each receipt a header (name,
// address, phone), item lines with quantities and prices, subtotal, tax,
// total, a card line, a timestamp and a footer. As on real receipts, many
// lines repeat exactly across receipts (headers, footers, common items), so
// exact duplicates — ties in similarity — are frequent.
func receiptLines(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 7))
	pick := func(words []string) string { return words[r.IntN(len(words))] }
	type merchant struct{ name, addr, phone string }
	merchants := make([]merchant, 400)
	for i := range merchants {
		merchants[i] = merchant{
			name:  fmt.Sprintf("%s %s %s", pick(nameA), pick(nameB), pick(kinds)),
			addr:  fmt.Sprintf("%d %s %s", 10+r.IntN(9990), pick(streets), pick([]string{"ST", "AVE", "RD", "BLVD", "WAY"})),
			phone: fmt.Sprintf("(%03d) %03d-%04d", 200+r.IntN(800), r.IntN(1000), r.IntN(10000)),
		}
	}
	out := make([]string, 0, n+40)
	for len(out) < n {
		m := merchants[r.IntN(len(merchants))]
		out = append(out, m.name, m.addr, m.phone)
		items := 5 + r.IntN(19)
		var sub float64
		for range items {
			qty := 1 + r.IntN(3)
			price := float64(50+r.IntN(2950)) / 100
			sub += float64(qty) * price
			item := pick(products)
			if r.IntN(3) == 0 {
				item += " " + pick(sizes)
			}
			if qty == 1 {
				out = append(out, fmt.Sprintf("%s %.2f", item, price))
			} else {
				out = append(out, fmt.Sprintf("%d x %s %.2f", qty, item, float64(qty)*price))
			}
		}
		tax := sub * 0.0825
		out = append(out,
			fmt.Sprintf("SUBTOTAL %.2f", sub),
			fmt.Sprintf("TAX 8.25%% %.2f", tax),
			fmt.Sprintf("TOTAL %.2f", sub+tax),
			fmt.Sprintf("%s ****%04d", pick([]string{"VISA", "MASTERCARD", "AMEX", "DEBIT"}), r.IntN(10000)),
			fmt.Sprintf("%02d/%02d/2025 %02d:%02d", 1+r.IntN(12), 1+r.IntN(28), 7+r.IntN(15), r.IntN(60)),
			pick(footers),
		)
	}
	return out[:n]
}

var (
	nameA    = strings.Fields("GREEN BLUE SUNNY MAPLE OAK RIVER CITY CORNER GOLDEN FRESH HAPPY ROYAL PINE LAKE NORTH SOUTH EAST WEST")
	nameB    = strings.Fields("VALLEY MARKET FARM HILL BAY GROVE STAR BRIDGE PARK HARBOR MILL STONE")
	kinds    = strings.Fields("GROCERY PHARMACY CAFE DELI HARDWARE BAKERY MART FOODS SUPPLY KITCHEN")
	streets  = strings.Fields("MAIN ELM OAK PINE MAPLE CEDAR WASHINGTON LAKE HILL PARK BROADWAY MARKET")
	products = strings.Fields("MILK EGGS BREAD BUTTER CHEESE APPLES BANANAS COFFEE TEA RICE PASTA CHICKEN BEEF SALMON YOGURT CEREAL SODA WATER JUICE CHIPS COOKIES SOAP SHAMPOO TOOTHPASTE BATTERIES TAPE NAILS PAINT ASPIRIN VITAMINS LATTE MUFFIN BAGEL SANDWICH SALAD TOMATOES ONIONS POTATOES LETTUCE")
	sizes    = strings.Fields("1L 2L 500ML 12OZ 16OZ 1LB 2LB 6PK 12PK LARGE SMALL ORGANIC")
	footers  = []string{"THANK YOU FOR SHOPPING", "PLEASE COME AGAIN", "RETAIN RECEIPT FOR RETURNS", "THANK YOU", "HAVE A NICE DAY"}
)

// hashedVectors embeds lines with Tally's offline embedder (embed/hashed),
// the vectors Tally stores when it runs without an embedding service.
func hashedVectors(lines []string, dims int) ([]float32, error) {
	e, err := hashed.New(dims)
	if err != nil {
		return nil, err
	}
	v := make([]float32, len(lines)*dims)
	var mu sync.Mutex
	var firstErr error
	parallelChunks(len(lines), 2048, func(_, lo, hi int) {
		vs, err := e.Embed(context.Background(), lines[lo:hi])
		if err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
			return
		}
		for i, x := range vs {
			copy(v[(lo+i)*dims:], x)
		}
	})
	return v, firstErr
}
