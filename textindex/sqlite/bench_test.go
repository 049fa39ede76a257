package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tallyhq/tally/textindex"
	"github.com/tallyhq/tally/textindex/sqlite"
)

// Synthetic but receipt-like text: a header (merchant, address, phone,
// date), twenty items from a few hundred products, and a footer of totals.
var (
	benchMerchants = []string{
		"KROGER", "WALMART SUPERCENTER", "TRADER JOE'S", "WHOLE FOODS MARKET", "SAFEWAY", "TARGET",
		"COSTCO WHOLESALE", "CVS PHARMACY", "WALGREENS", "HOME DEPOT", "STARBUCKS COFFEE", "CAFÉ DU MONDE",
		"ALDI", "PUBLIX", "H-E-B", "MEIJER", "WEGMANS", "SPROUTS FARMERS MARKET", "7-ELEVEN", "SHELL",
		"CHIPOTLE MEXICAN GRILL", "PANERA BREAD", "BEST BUY", "LOWE'S", "RITE AID", "FOOD LION", "GIANT EAGLE",
		"HY-VEE", "SMART & FINAL", "BOULANGERIE LA MIE DORÉE",
	}
	benchAdjectives = []string{
		"ORGANIC", "WHOLE", "LOW FAT", "FRESH", "FROZEN", "LARGE", "SMALL", "GREEN", "RED", "SWEET", "SPICY",
		"DARK", "MILK", "UNSALTED", "SALTED", "GLUTEN FREE", "WILD", "BABY", "ROASTED", "GREEK",
	}
	benchNouns = []string{
		"MILK", "BREAD", "BANANAS", "APPLES", "EGGS", "BUTTER", "CHEESE", "YOGURT", "CHICKEN BREAST", "GROUND BEEF",
		"SALMON", "RICE", "PASTA", "TOMATOES", "ONIONS", "POTATOES", "SPINACH", "LETTUCE", "CARROTS", "AVOCADO",
		"CHOCOLATE", "CHOC CHIP COOKIES", "COFFEE BEANS", "TEA", "ORANGE JUICE", "CEREAL", "OATS", "ALMONDS",
		"PEANUT BUTTER", "JAM", "HONEY", "OLIVE OIL", "FLOUR", "SUGAR", "SALT", "PEPPER", "CHIPS", "SALSA",
		"TORTILLAS", "BEANS", "SODA", "WATER", "BEER", "WINE", "PAPER TOWELS", "DETERGENT", "SHAMPOO",
		"TOOTHPASTE", "BATTERIES", "CROISSANT", "BAGUETTE", "CRÈME BRÛLÉE", "JALAPEÑO PEPPERS",
	}
	benchStreets = []string{"MAIN ST", "OAK AVE", "ELM ST", "BROADWAY", "MARKET ST", "1ST AVE", "PARK BLVD", "RUE DE LA PAIX"}
	benchCities  = []string{"SPRINGFIELD, IL 62701", "PORTLAND, OR 97201", "AUSTIN, TX 78701", "DENVER, CO 80202", "NEW ORLEANS, LA 70116"}
	benchFooters = []string{"THANK YOU FOR SHOPPING", "PLEASE COME AGAIN", "RETAIN RECEIPT FOR RETURNS", "SURVEY AT WWW.TELLUS.COM"}
)

func benchReceipt(r *rand.Rand, n int) (string, []textindex.Doc) {
	imageID := fmt.Sprintf("bench-%06d", n)
	merchant := benchMerchants[r.IntN(len(benchMerchants))]
	date := fmt.Sprintf("2024-%02d-%02d", 1+r.IntN(12), 1+r.IntN(28))
	rows := []string{
		merchant,
		fmt.Sprintf("%d %s", 100+r.IntN(9900), benchStreets[r.IntN(len(benchStreets))]),
		benchCities[r.IntN(len(benchCities))],
		fmt.Sprintf("(%03d) %03d-%04d", 200+r.IntN(800), r.IntN(1000), r.IntN(10000)),
		fmt.Sprintf("%s %02d:%02d  STORE %04d  REG %d", date, r.IntN(24), r.IntN(60), r.IntN(10000), 1+r.IntN(12)),
	}
	var subtotal int
	for range 20 {
		cents := 49 + r.IntN(2500)
		subtotal += cents
		item := benchNouns[r.IntN(len(benchNouns))]
		if r.IntN(2) == 0 {
			item = benchAdjectives[r.IntN(len(benchAdjectives))] + " " + item
		}
		if r.IntN(5) == 0 {
			rows = append(rows, fmt.Sprintf("%d @ %d.%02d %s %d.%02d", 2+r.IntN(3), cents/100, cents%100, item, cents/50, cents%50*2))
		} else {
			rows = append(rows, fmt.Sprintf("%s %d.%02d", item, cents/100, cents%100))
		}
	}
	tax := subtotal * 8 / 100
	rows = append(rows,
		fmt.Sprintf("SUBTOTAL %d.%02d", subtotal/100, subtotal%100),
		fmt.Sprintf("TAX 8.00%% %d.%02d", tax/100, tax%100),
		fmt.Sprintf("GRAND TOTAL %d.%02d", (subtotal+tax)/100, (subtotal+tax)%100),
		fmt.Sprintf("VISA **** %04d  AUTH %06d", r.IntN(10000), r.IntN(1000000)),
		benchFooters[r.IntN(len(benchFooters))],
	)
	docs := make([]textindex.Doc, len(rows))
	for i, s := range rows {
		docs[i] = textindex.Doc{ReceiptID: 1, RowID: i + 1, LineIDs: []int{i + 1}, Text: s, Merchant: merchant, Date: date}
	}
	return imageID, docs
}

// BenchmarkSearch indexes 10,000 receipts of 30 rows, then measures search
// latency; p50-ms/query is the median of single queries, p95-ms/query the
// 95th percentile.
func BenchmarkSearch(b *testing.B) {
	const receipts = 10_000
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "text.db")
	ix, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	r := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	for n := range receipts {
		id, docs := benchReceipt(r, n)
		if err := ix.Put(ctx, id, docs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("indexed %d receipts × 30 rows in %v (%.0f rows/s)", receipts, time.Since(start).Round(time.Millisecond),
		float64(receipts*30)/time.Since(start).Seconds())
	if size, err := fileSize(path); err == nil {
		b.Logf("file %.1f MiB (with its WAL)", float64(size)/(1<<20))
	}

	for _, bc := range []struct{ name, q string }{
		{"Word", "milk"},
		{"RareWord", "costco"},
		{"TwoWords", "organic bananas"},
		{"Phrase", `"peanut butter"`},
		{"CommonPhrase", `"grand total"`},
		{"Prefix", "choc*"},
		{"ShortPrefix", "ch*"},
		{"BroadPrefix", "12*"}, // near the worst case: many rows have a number starting with 12 (a one-letter prefix is refused)
		{"TwoPrefixes", "gr* tot*"},
		{"Diacritics", "creme brulee"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var times []time.Duration
			var hits int
			for b.Loop() {
				t0 := time.Now()
				hs, err := ix.Search(ctx, textindex.Query{Text: bc.q})
				times = append(times, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				hits = len(hs)
			}
			if hits == 0 {
				b.Fatalf("%s found nothing", bc.q)
			}
			slices.Sort(times)
			b.ReportMetric(ms(times[len(times)/2]), "p50-ms/query")
			b.ReportMetric(ms(times[len(times)*95/100]), "p95-ms/query")
		})
	}
}

// BenchmarkPut measures replacing one 30-row receipt in an index of 2,000.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	ix, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "text.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 2000 {
		id, docs := benchReceipt(r, n)
		if err := ix.Put(ctx, id, docs); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	for b.Loop() {
		id, docs := benchReceipt(r, n%4000) // half replace, half add
		if err := ix.Put(ctx, id, docs); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.N*30)/b.Elapsed().Seconds(), "rows/s")
}

func fileSize(path string) (int64, error) {
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, err
		}
		total += fi.Size()
	}
	return total, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
