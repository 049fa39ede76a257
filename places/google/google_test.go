package google_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/places"
	"github.com/tallyhq/tally/places/google"
)

const testKey = "test-key-0123456789"

// Answers as Google sends them (Places API (New) and Find Place (legacy)).
const (
	searchTextOK = `{
  "places": [
    {
      "id": "ChIJ7xX1oU1V2YARvTQ7ZK0Cfbs",
      "types": ["warehouse_store", "store", "point_of_interest", "establishment"],
      "nationalPhoneNumber": "(619) 555-0100",
      "internationalPhoneNumber": "+1 619-555-0100",
      "formattedAddress": "650 Gateway Center Dr, San Diego, CA 92102, USA",
      "location": {"latitude": 32.7059, "longitude": -117.0845},
      "websiteUri": "https://www.costco.com/san-diego.html",
      "displayName": {"text": "Costco Wholesale", "languageCode": "en"}
    },
    {
      "id": "ChIJsecond",
      "displayName": {"text": "Costco Gas Station", "languageCode": "en"},
      "formattedAddress": "652 Gateway Center Dr, San Diego, CA 92102, USA",
      "types": ["gas_station"]
    }
  ]
}`
	detailsOK = `{
  "id": "ChIJ7xX1oU1V2YARvTQ7ZK0Cfbs",
  "types": ["warehouse_store", "store"],
  "nationalPhoneNumber": "(619) 555-0100",
  "internationalPhoneNumber": "+1 619-555-0100",
  "formattedAddress": "650 Gateway Center Dr, San Diego, CA 92102, USA",
  "location": {"latitude": 32.7059, "longitude": -117.0845},
  "websiteUri": "https://www.costco.com/san-diego.html",
  "displayName": {"text": "Costco Wholesale", "languageCode": "en"}
}`
	findPlaceOK = `{
   "candidates" : [
      {
         "formatted_address" : "650 Gateway Center Dr, San Diego, CA 92102, United States",
         "geometry" : {
            "location" : {"lat" : 32.7059, "lng" : -117.0845},
            "viewport" : {
               "northeast" : {"lat" : 32.7072, "lng" : -117.0831},
               "southwest" : {"lat" : 32.7045, "lng" : -117.0858}
            }
         },
         "name" : "Costco Wholesale",
         "place_id" : "ChIJ7xX1oU1V2YARvTQ7ZK0Cfbs",
         "types" : ["point_of_interest", "store", "establishment"]
      }
   ],
   "status" : "OK"
}`
	findPlaceZero   = `{"candidates": [], "status": "ZERO_RESULTS"}`
	findPlaceDenied = `{"candidates": [], "error_message": "The provided API key is invalid. ", "status": "REQUEST_DENIED"}`
	findPlaceQuota  = `{"candidates": [], "error_message": "You have exceeded your rate-limit for this API.", "status": "OVER_QUERY_LIMIT"}`
	findPlaceBad    = `{"candidates": [], "status": "INVALID_REQUEST"}`
	findPlaceFlaky  = `{"candidates": [], "status": "UNKNOWN_ERROR"}`
	keyInvalid      = `{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
  "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}`
	permissionDenied = `{"error": {"code": 403, "message": "Places API (New) has not been used in project 1 before or it is disabled.", "status": "PERMISSION_DENIED"}}`
	badArgument      = `{"error": {"code": 400, "message": "Invalid 'textQuery': must not be empty.", "status": "INVALID_ARGUMENT"}}`
	exhausted        = `{"error": {"code": 429, "message": "Quota exceeded for quota metric 'SearchTextRequest'.", "status": "RESOURCE_EXHAUSTED"}}`
	notFound         = `{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}`
	internal         = `{"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}`
)

// reply is one canned HTTP answer.
type reply struct {
	status int
	body   string
}

// server answers with replies in turn (repeating the last) and records
// what it saw.
type server struct {
	*httptest.Server
	requests atomic.Int64
	check    func(*http.Request, []byte) string // "" when the request is right
	problems chan string
}

func newServer(t *testing.T, check func(*http.Request, []byte) string, replies ...reply) *server {
	t.Helper()
	s := &server{check: check, problems: make(chan string, 16)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		if s.check != nil {
			if p := s.check(r, body); p != "" {
				select {
				case s.problems <- p:
				default:
				}
			}
		}
		rep := replies[min(int(n)-1, len(replies)-1)]
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	t.Cleanup(func() {
		s.Close()
		close(s.problems)
		for p := range s.problems {
			t.Error("request: " + p)
		}
	})
	return s
}

func newClient(t *testing.T, base string, opts google.Options) *google.Client {
	t.Helper()
	opts.APIKey = testKey
	opts.BaseURL, opts.LegacyBaseURL = base, base
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = time.Millisecond
	}
	c, err := google.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFindByTextRequestAndResponse(t *testing.T) {
	t.Parallel()
	check := func(r *http.Request, body []byte) string {
		var req map[string]any
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/v1/places:searchText":
			return r.Method + " " + r.URL.Path
		case r.URL.RawQuery != "":
			return "query string " + r.URL.RawQuery + " (the key goes in a header)"
		case r.Header.Get("X-Goog-Api-Key") != testKey:
			return "X-Goog-Api-Key " + r.Header.Get("X-Goog-Api-Key")
		case r.Header.Get("X-Goog-FieldMask") != "places.id,places.displayName,places.formattedAddress,places.types,places.nationalPhoneNumber,places.internationalPhoneNumber,places.websiteUri,places.location":
			return "X-Goog-FieldMask " + r.Header.Get("X-Goog-FieldMask")
		case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
			return "Content-Type " + r.Header.Get("Content-Type")
		case json.Unmarshal(body, &req) != nil:
			return "body " + string(body)
		case req["textQuery"] != "650 Gateway Center Dr, San Diego" || req["maxResultCount"] != float64(3) || len(req) != 2:
			return "body " + string(body)
		}
		return ""
	}
	s := newServer(t, check, reply{200, searchTextOK})
	c := newClient(t, s.URL, google.Options{MaxResults: 3})
	got, err := c.FindByText(context.Background(), " 650 Gateway Center Dr, San Diego ")
	if err != nil {
		t.Fatal(err)
	}
	want := places.Place{
		ID: "ChIJ7xX1oU1V2YARvTQ7ZK0Cfbs", Name: "Costco Wholesale",
		FormattedAddress: "650 Gateway Center Dr, San Diego, CA 92102, USA",
		Phone:            "+1 619-555-0100", Website: "https://www.costco.com/san-diego.html",
		Lat: 32.7059, Lng: -117.0845,
	}
	if len(got) != 2 {
		t.Fatalf("got %d places, want 2", len(got))
	}
	g := got[0]
	if g.ID != want.ID || g.Name != want.Name || g.FormattedAddress != want.FormattedAddress || g.Phone != want.Phone ||
		g.Website != want.Website || g.Lat != want.Lat || g.Lng != want.Lng || strings.Join(g.Types, ",") != "warehouse_store,store,point_of_interest,establishment" {
		t.Errorf("place 0 = %+v, want %+v", g, want)
	}
	if got[1].ID != "ChIJsecond" || got[1].Phone != "" || got[1].Lat != 0 {
		t.Errorf("place 1 = %+v", got[1])
	}
	if c.Requests() != 1 {
		t.Errorf("Requests = %d, want 1", c.Requests())
	}
}

func TestFindByPhoneRequestAndResponse(t *testing.T) {
	t.Parallel()
	check := func(r *http.Request, _ []byte) string {
		q := r.URL.Query()
		switch {
		case r.Method != http.MethodGet || r.URL.Path != "/maps/api/place/findplacefromtext/json":
			return r.Method + " " + r.URL.Path
		case q.Get("input") != "+16195550100" || q.Get("inputtype") != "phonenumber" ||
			q.Get("fields") != "place_id,name,formatted_address,types,geometry" || q.Get("key") != testKey || len(q) != 4:
			return "query " + r.URL.RawQuery
		case !strings.Contains(r.URL.RawQuery, "input=%2B16195550100"):
			return "the + of the phone number is not escaped: " + r.URL.RawQuery
		}
		return ""
	}
	s := newServer(t, check, reply{200, findPlaceOK})
	c := newClient(t, s.URL, google.Options{})
	got, err := c.FindByPhone(context.Background(), "+16195550100")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d places, want 1", len(got))
	}
	g := got[0]
	if g.ID != "ChIJ7xX1oU1V2YARvTQ7ZK0Cfbs" || g.Name != "Costco Wholesale" ||
		g.FormattedAddress != "650 Gateway Center Dr, San Diego, CA 92102, United States" ||
		g.Lat != 32.7059 || g.Lng != -117.0845 || strings.Join(g.Types, ",") != "point_of_interest,store,establishment" {
		t.Errorf("place = %+v", g)
	}
}

func TestDetailsRequestAndResponse(t *testing.T) {
	t.Parallel()
	check := func(r *http.Request, _ []byte) string {
		switch {
		case r.Method != http.MethodGet || r.URL.Path != "/v1/places/ChIJ7xX1oU1V2YARvTQ7ZK0Cfbs":
			return r.Method + " " + r.URL.Path
		case r.Header.Get("X-Goog-Api-Key") != testKey:
			return "X-Goog-Api-Key " + r.Header.Get("X-Goog-Api-Key")
		case r.Header.Get("X-Goog-FieldMask") != "id,displayName,formattedAddress,types,nationalPhoneNumber,internationalPhoneNumber,websiteUri,location":
			return "X-Goog-FieldMask " + r.Header.Get("X-Goog-FieldMask")
		}
		return ""
	}
	s := newServer(t, check, reply{200, detailsOK})
	c := newClient(t, s.URL, google.Options{})
	for _, id := range []string{"ChIJ7xX1oU1V2YARvTQ7ZK0Cfbs", "places/ChIJ7xX1oU1V2YARvTQ7ZK0Cfbs"} {
		got, err := c.Details(context.Background(), id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got.ID != "ChIJ7xX1oU1V2YARvTQ7ZK0Cfbs" || got.Name != "Costco Wholesale" || got.Phone != "+1 619-555-0100" ||
			got.Website != "https://www.costco.com/san-diego.html" || got.Lat != 32.7059 || len(got.Types) != 2 {
			t.Errorf("%s: place = %+v", id, got)
		}
	}
}

func TestResponses(t *testing.T) {
	t.Parallel()
	phone := func(c *google.Client) (int, error) {
		p, err := c.FindByPhone(context.Background(), "+16195550100")
		return len(p), err
	}
	text := func(c *google.Client) (int, error) {
		p, err := c.FindByText(context.Background(), "costco")
		return len(p), err
	}
	details := func(c *google.Client) (int, error) {
		_, err := c.Details(context.Background(), "ChIJ7xX1oU1V2YARvTQ7ZK0Cfbs")
		return 1, err
	}
	tests := []struct {
		name         string
		call         func(*google.Client) (int, error)
		replies      []reply
		wantPlaces   int
		wantErr      error // nil: success
		wantAnyErr   bool  // an error that is none of the sentinels
		wantRequests int64
	}{
		{"phone: ZERO_RESULTS is an empty list", phone, []reply{{200, findPlaceZero}}, 0, nil, false, 1},
		{"phone: REQUEST_DENIED is not retried", phone, []reply{{200, findPlaceDenied}}, 0, places.ErrDenied, false, 1},
		{"phone: OVER_QUERY_LIMIT then OK", phone, []reply{{200, findPlaceQuota}, {200, findPlaceOK}}, 1, nil, false, 2},
		{"phone: OVER_QUERY_LIMIT throughout", phone, []reply{{200, findPlaceQuota}}, 0, places.ErrQuota, false, 3},
		{"phone: INVALID_REQUEST", phone, []reply{{200, findPlaceBad}}, 0, places.ErrInvalidArgument, false, 1},
		{"phone: UNKNOWN_ERROR then OK", phone, []reply{{200, findPlaceFlaky}, {200, findPlaceOK}}, 1, nil, false, 2},
		{"phone: HTTP 503 then OK", phone, []reply{{503, "unavailable"}, {200, findPlaceOK}}, 1, nil, false, 2},
		{"phone: HTTP 403", phone, []reply{{403, "forbidden"}}, 0, places.ErrDenied, false, 1},
		{"phone: malformed JSON", phone, []reply{{200, `{"candidates": [`}}, 0, nil, true, 1},
		{"phone: no status", phone, []reply{{200, `{"candidates": []}`}}, 0, nil, true, 1},
		{"phone: unknown status", phone, []reply{{200, `{"status": "NOT_A_STATUS"}`}}, 0, nil, true, 1},
		{"text: no match is an empty object", text, []reply{{200, `{}`}}, 0, nil, false, 1},
		{"text: 403 PERMISSION_DENIED is not retried", text, []reply{{403, permissionDenied}}, 0, places.ErrDenied, false, 1},
		{"text: 400 API_KEY_INVALID is denied", text, []reply{{400, keyInvalid}}, 0, places.ErrDenied, false, 1},
		{"text: 400 INVALID_ARGUMENT", text, []reply{{400, badArgument}}, 0, places.ErrInvalidArgument, false, 1},
		{"text: 429 then OK", text, []reply{{429, exhausted}, {200, searchTextOK}}, 2, nil, false, 2},
		{"text: 429 throughout", text, []reply{{429, exhausted}}, 0, places.ErrQuota, false, 3},
		{"text: 500 then OK", text, []reply{{500, internal}, {200, searchTextOK}}, 2, nil, false, 2},
		{"text: 500 throughout", text, []reply{{500, internal}}, 0, nil, true, 3},
		{"text: malformed JSON", text, []reply{{200, `{"places": [{"id": 1}]}`}}, 0, nil, true, 1},
		{"text: HTML error page", text, []reply{{502, "<html>Bad Gateway</html>"}, {200, searchTextOK}}, 2, nil, false, 2},
		{"details: 404", details, []reply{{404, notFound}}, 0, places.ErrNotFound, false, 1},
		{"details: no id", details, []reply{{200, `{}`}}, 0, nil, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, nil, tt.replies...)
			c := newClient(t, s.URL, google.Options{})
			n, err := tt.call(c)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			case tt.wantAnyErr && err == nil:
				t.Errorf("err = nil, want an error")
			case tt.wantAnyErr:
				for _, sentinel := range []error{places.ErrDenied, places.ErrQuota, places.ErrNotFound, tally.ErrInvalidArgument} {
					if errors.Is(err, sentinel) {
						t.Errorf("err = %v is %v", err, sentinel)
					}
				}
			case tt.wantErr == nil && err != nil:
				t.Errorf("err = %v, want none", err)
			case err == nil && n != tt.wantPlaces:
				t.Errorf("%d places, want %d", n, tt.wantPlaces)
			}
			if err != nil {
				t.Logf("error: %v", err)
				if strings.Contains(err.Error(), testKey) {
					t.Errorf("error message reveals the API key: %v", err)
				}
			}
			if got := s.requests.Load(); got != tt.wantRequests || c.Requests() != got {
				t.Errorf("server saw %d requests, client counted %d; want %d", got, c.Requests(), tt.wantRequests)
			}
		})
	}
}

func TestPhoneMustBeE164(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, reply{200, findPlaceOK})
	c := newClient(t, s.URL, google.Options{})
	for _, phone := range []string{"", "6195550100", "+1 619 555 0100", "+1-619-555-0100", "+01234567890", "+1234567", "+1234567890123456", "tel:+16195550100"} {
		if _, err := c.FindByPhone(context.Background(), phone); !errors.Is(err, places.ErrInvalidArgument) {
			t.Errorf("FindByPhone(%q): err = %v, want ErrInvalidArgument", phone, err)
		}
	}
	for _, call := range []func() error{
		func() error { _, err := c.FindByText(context.Background(), "  "); return err },
		func() error { _, err := c.Details(context.Background(), ""); return err },
		func() error { _, err := c.Details(context.Background(), "a/b"); return err },
	} {
		if err := call(); !errors.Is(err, places.ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
	}
	if n := s.requests.Load(); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}

// slowServer answers the first `slow` requests only after the client has
// given up on them, then answers at once.
func slowServer(t *testing.T, slow int64, body string) *server {
	t.Helper()
	s := &server{problems: make(chan string, 1)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // then the server notices the client leaving
		if s.requests.Add(1) <= slow {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(func() { s.Close(); close(s.problems) })
	return s
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	t.Run("no retries left", func(t *testing.T) {
		t.Parallel()
		s := slowServer(t, 1, searchTextOK)
		c := newClient(t, s.URL, google.Options{Timeout: 50 * time.Millisecond, MaxRetries: -1})
		_, err := c.FindByText(context.Background(), "costco")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if c.Requests() != 1 {
			t.Errorf("Requests = %d, want 1", c.Requests())
		}
	})
	t.Run("retried", func(t *testing.T) {
		t.Parallel()
		s := slowServer(t, 1, searchTextOK)
		c := newClient(t, s.URL, google.Options{Timeout: 50 * time.Millisecond})
		got, err := c.FindByText(context.Background(), "costco")
		if err != nil || len(got) != 2 {
			t.Fatalf("got %d places, %v; want the second attempt's 2", len(got), err)
		}
		if c.Requests() != 2 {
			t.Errorf("Requests = %d, want 2", c.Requests())
		}
	})
	t.Run("caller's deadline is not retried", func(t *testing.T) {
		t.Parallel()
		s := slowServer(t, 10, searchTextOK)
		c := newClient(t, s.URL, google.Options{Timeout: 5 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := c.FindByText(ctx, "costco"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if c.Requests() != 1 {
			t.Errorf("Requests = %d, want 1", c.Requests())
		}
	})
}

func TestTransportErrorHidesKey(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // no answer at all
		}
	}))
	defer s.Close()
	c := newClient(t, s.URL, google.Options{MaxRetries: 1})
	_, err := c.FindByPhone(context.Background(), "+16195550100")
	if err == nil {
		t.Fatal("err = nil, want a transport error")
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error reveals the API key: %v", err)
	}
	if c.Requests() != 2 {
		t.Errorf("Requests = %d, want 2 (a transport failure is retried)", c.Requests())
	}
}

func TestNew(t *testing.T) {
	t.Setenv(google.APIKeyEnv, "")
	if _, err := google.New(google.Options{}); !errors.Is(err, google.ErrNoKey) {
		t.Errorf("no key: err = %v, want ErrNoKey", err)
	}
	for _, base := range []string{"places.googleapis.com", "ftp://x", "http://", "://bad"} {
		if _, err := google.New(google.Options{APIKey: "k", BaseURL: base}); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("BaseURL %q: err = %v, want ErrInvalidArgument", base, err)
		}
		if _, err := google.New(google.Options{APIKey: "k", LegacyBaseURL: base}); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("LegacyBaseURL %q: err = %v, want ErrInvalidArgument", base, err)
		}
	}

	// The key comes from the environment when Options has none.
	t.Setenv(google.APIKeyEnv, "env-key")
	var seen atomic.Value
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("X-Goog-Api-Key"))
		io.WriteString(w, `{}`)
	}))
	defer s.Close()
	c, err := google.New(google.Options{BaseURL: s.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindByText(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if seen.Load() != "env-key" {
		t.Errorf("X-Goog-Api-Key = %v, want the environment's", seen.Load())
	}
}
