package places_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/places"
	"github.com/tallyhq/tally/places/google"
)

// googleStub speaks just enough of Google's two APIs for the cache: Find
// Place finds one place by phone, Text Search one by any text.
func googleStub(t testing.TB) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/maps/api/place/findplacefromtext/json":
			io.WriteString(w, `{"candidates":[{"place_id":"ChIJcostco","name":"Costco Wholesale",
				"formatted_address":"1 Main St, San Diego, CA 92101, USA","types":["store"],
				"geometry":{"location":{"lat":32.7,"lng":-117.1}}}],"status":"OK"}`)
		case "/v1/places:searchText":
			io.WriteString(w, `{"places":[{"id":"ChIJcostco","displayName":{"text":"Costco Wholesale","languageCode":"en"},
				"formattedAddress":"1 Main St, San Diego, CA 92101, USA","internationalPhoneNumber":"+1 800-555-1234",
				"websiteUri":"https://www.costco.com/","types":["store"],"location":{"latitude":32.7,"longitude":-117.1}}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s, &requests
}

func TestCacheOverGoogle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, requests := googleStub(t)
	client, err := google.New(google.Options{APIKey: "k", BaseURL: s.URL, LegacyBaseURL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	tbl := openTable(t)
	c := places.NewCache(client, tbl, places.CacheOptions{Log: quietLog()})
	for i := range 2 {
		byPhone, err := c.FindByPhone(ctx, "+18005551234")
		if err != nil || len(byPhone) != 1 || byPhone[0].ID != "ChIJcostco" || byPhone[0].Lat != 32.7 {
			t.Fatalf("round %d: by phone = %+v, %v", i, byPhone, err)
		}
		byAddress, err := c.FindByAddress(ctx, "1 Main St, San Diego")
		if err != nil || len(byAddress) != 1 || byAddress[0].Phone != "+1 800-555-1234" {
			t.Fatalf("round %d: by address = %+v, %v", i, byAddress, err)
		}
	}
	if n := requests.Load(); n != 2 || client.Requests() != 2 {
		t.Errorf("server saw %d requests (client counted %d), want 2: one per distinct lookup", n, client.Requests())
	}
	for _, key := range []items.Key{
		{PK: "PLACES#PHONE", SK: "VALUE#+18005551234"},
		{PK: "PLACES#ADDRESS", SK: "VALUE#1 MAIN ST, SAN DIEGO"},
	} {
		it, err := tbl.Get(ctx, key)
		if err != nil {
			t.Fatalf("%+v: %v", key, err)
		}
		if it["hit_count"] != int64(1) || !strings.Contains(it["places"].(string), `"id":"ChIJcostco"`) {
			t.Errorf("%+v: item %v", key, it)
		}
	}
}

// BenchmarkWarmCacheReceipt looks up what one receipt offers (phone,
// address, website) with every answer already cached: the Google requests
// per receipt should be 0, and the time is the table's.
func BenchmarkWarmCacheReceipt(b *testing.B) {
	ctx := context.Background()
	s, _ := googleStub(b)
	client, err := google.New(google.Options{APIKey: "k", BaseURL: s.URL, LegacyBaseURL: s.URL, Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	c := places.NewCache(client, openTable(b), places.CacheOptions{Log: quietLog()})
	receipt := func() {
		if _, err := c.FindByPhone(ctx, "+18005551234"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.FindByAddress(ctx, "1 Main St, San Diego"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.FindByURL(ctx, "www.costco.com"); err != nil {
			b.Fatal(err)
		}
	}
	receipt() // warm
	before := client.Requests()
	for b.Loop() {
		receipt()
	}
	b.ReportMetric(float64(client.Requests()-before)/float64(b.N), "requests/receipt")
}
