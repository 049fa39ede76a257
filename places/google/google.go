// Package google is the places adapter for Google Maps Platform, over plain
// net/http: Text Search (New) and Place Details (New) for text and IDs, and
// the legacy Find Place from Text for phone numbers, which Places API (New)
// cannot search by.
//
// Errors wrap the places sentinels: a refused key is places.ErrDenied (not
// retried), an exhausted quota is places.ErrQuota (after retries), a
// rejected request is places.ErrInvalidArgument, an unknown place ID is
// places.ErrNotFound. Rate limits, 5xx answers, transport failures and
// per-request timeouts are retried with exponential backoff. The API key is
// never part of an error message.
package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/places"
)

// Defaults of Options.
const (
	DefaultBaseURL       = "https://places.googleapis.com"
	DefaultLegacyBaseURL = "https://maps.googleapis.com"
	DefaultTimeout       = 10 * time.Second
	DefaultMaxRetries    = 2
	DefaultRetryBackoff  = 500 * time.Millisecond
	DefaultMaxResults    = 5
	// APIKeyEnv is where New finds the key when Options.APIKey is empty.
	APIKeyEnv = "GOOGLE_PLACES_API_KEY"
)

// ErrNoKey means no API key was given or found in $GOOGLE_PLACES_API_KEY:
// the caller should run without a places directory rather than fail.
var ErrNoKey = errors.New("google places: no API key (set " + APIKeyEnv + ")")

// Field masks: Places API (New) returns only the fields asked for, and
// bills by the most expensive one. These are what merchant resolution uses.
const (
	placeFields      = "id,displayName,formattedAddress,types,nationalPhoneNumber,internationalPhoneNumber,websiteUri,location"
	searchFieldMask  = "places.id,places.displayName,places.formattedAddress,places.types,places.nationalPhoneNumber,places.internationalPhoneNumber,places.websiteUri,places.location"
	detailsFieldMask = placeFields
	// Find Place (legacy) offers no phone or website fields.
	findPlaceFields = "place_id,name,formatted_address,types,geometry"
)

// Options configure a Client; the zero value reads the key from the
// environment and talks to Google.
type Options struct {
	// APIKey authenticates every request; default $GOOGLE_PLACES_API_KEY.
	APIKey string
	// BaseURL is where Places API (New) lives; default DefaultBaseURL.
	// Tests point it at a local server.
	BaseURL string
	// LegacyBaseURL is where Find Place (legacy) lives; default
	// DefaultLegacyBaseURL.
	LegacyBaseURL string
	// Timeout bounds each HTTP attempt; default DefaultTimeout.
	Timeout time.Duration
	// HTTPClient sends the requests; default a new http.Client.
	HTTPClient *http.Client
	// MaxRetries is how many times a rate-limited, failed (5xx, transport)
	// or timed-out attempt is retried; 0 means DefaultMaxRetries, negative
	// means never.
	MaxRetries int
	// RetryBackoff is the wait before the first retry, doubled for each
	// later one (a Retry-After header wins when longer); default
	// DefaultRetryBackoff.
	RetryBackoff time.Duration
	// MaxResults caps the places a text search returns (1–20); default
	// DefaultMaxResults, enough to pick a merchant from.
	MaxResults int
}

// Client is a places.Client backed by Google. It is safe for concurrent use.
type Client struct {
	key        string
	base       string
	legacy     string
	timeout    time.Duration
	http       *http.Client
	maxRetries int
	backoff    time.Duration
	maxResults int

	requests atomic.Int64
}

var _ places.Client = (*Client)(nil)

// New returns a Client; ErrNoKey when there is no API key, and
// tally.ErrInvalidArgument for a base URL that is not absolute http(s).
func New(opts Options) (*Client, error) {
	c := &Client{
		key:        strings.TrimSpace(opts.APIKey),
		timeout:    opts.Timeout,
		http:       opts.HTTPClient,
		maxRetries: opts.MaxRetries,
		backoff:    opts.RetryBackoff,
		maxResults: opts.MaxResults,
	}
	if c.key == "" {
		c.key = strings.TrimSpace(os.Getenv(APIKeyEnv))
	}
	if c.key == "" {
		return nil, ErrNoKey
	}
	var err error
	if c.base, err = baseURL(opts.BaseURL, DefaultBaseURL); err != nil {
		return nil, fmt.Errorf("google places: BaseURL: %w", err)
	}
	if c.legacy, err = baseURL(opts.LegacyBaseURL, DefaultLegacyBaseURL); err != nil {
		return nil, fmt.Errorf("google places: LegacyBaseURL: %w", err)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.backoff <= 0 {
		c.backoff = DefaultRetryBackoff
	}
	if c.maxResults <= 0 {
		c.maxResults = DefaultMaxResults
	}
	c.maxResults = min(c.maxResults, 20)
	return c, nil
}

func baseURL(s, def string) (string, error) {
	if s == "" {
		return def, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL: %w", s, tally.ErrInvalidArgument)
	}
	return strings.TrimRight(s, "/"), nil
}

// Requests returns how many HTTP requests the client has sent, retries
// included: what Google bills, and what a warm cache should keep near zero.
func (c *Client) Requests() int64 { return c.requests.Load() }

// FindByPhone finds the places listed under an E.164 phone number with
// Find Place (legacy), inputtype=phonenumber.
func (c *Client) FindByPhone(ctx context.Context, e164 string) ([]places.Place, error) {
	if !places.ValidE164(e164) {
		return nil, fmt.Errorf("google places: find by phone %q: not E.164 (+ and 8–15 digits): %w", e164, places.ErrInvalidArgument)
	}
	q := url.Values{
		"input":     {e164},
		"inputtype": {"phonenumber"},
		"fields":    {findPlaceFields},
		"key":       {c.key},
	}
	endpoint := c.legacy + "/maps/api/place/findplacefromtext/json?" + q.Encode()
	var resp findPlaceResponse
	if err := c.call(ctx, "find by phone", legacyAPI, http.MethodGet, endpoint, nil, "", &resp); err != nil {
		return nil, err
	}
	found := make([]places.Place, 0, len(resp.Candidates))
	for _, cand := range resp.Candidates {
		found = append(found, cand.place())
	}
	return found, nil
}

// FindByText searches free text (an address, a name) with Text Search
// (New).
func (c *Client) FindByText(ctx context.Context, text string) ([]places.Place, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, fmt.Errorf("google places: find by text: empty text: %w", places.ErrInvalidArgument)
	}
	body, err := json.Marshal(searchTextRequest{TextQuery: text, MaxResultCount: c.maxResults})
	if err != nil {
		return nil, fmt.Errorf("google places: find by text: %w", err)
	}
	var resp searchTextResponse
	if err := c.call(ctx, "find by text", newAPI, http.MethodPost, c.base+"/v1/places:searchText", body, searchFieldMask, &resp); err != nil {
		return nil, err
	}
	found := make([]places.Place, 0, len(resp.Places))
	for _, p := range resp.Places {
		found = append(found, p.place())
	}
	return found, nil
}

// Details returns one place by ID (a bare ID or a "places/ID" resource
// name) with Place Details (New).
func (c *Client) Details(ctx context.Context, id string) (places.Place, error) {
	id = strings.TrimPrefix(strings.TrimSpace(id), "places/")
	if id == "" || strings.ContainsAny(id, "/?#") {
		return places.Place{}, fmt.Errorf("google places: details %q: not a place ID: %w", id, places.ErrInvalidArgument)
	}
	var resp newPlace
	if err := c.call(ctx, "details "+id, newAPI, http.MethodGet, c.base+"/v1/places/"+url.PathEscape(id), nil, detailsFieldMask, &resp); err != nil {
		return places.Place{}, err
	}
	if resp.ID == "" {
		return places.Place{}, fmt.Errorf("google places: details %s: response without an id", id)
	}
	return resp.place(), nil
}

// searchTextRequest is the body of places:searchText.
type searchTextRequest struct {
	TextQuery      string `json:"textQuery"`
	MaxResultCount int    `json:"maxResultCount,omitempty"`
}

// searchTextResponse is the answer of places:searchText; an empty object
// when nothing matched.
type searchTextResponse struct {
	Places []newPlace `json:"places"`
}

// newPlace is a Place of Places API (New), with the fields of the masks.
type newPlace struct {
	ID          string `json:"id"`
	DisplayName struct {
		Text string `json:"text"`
	} `json:"displayName"`
	FormattedAddress         string   `json:"formattedAddress"`
	Types                    []string `json:"types"`
	NationalPhoneNumber      string   `json:"nationalPhoneNumber"`
	InternationalPhoneNumber string   `json:"internationalPhoneNumber"`
	WebsiteURI               string   `json:"websiteUri"`
	Location                 struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
	} `json:"location"`
}

func (p newPlace) place() places.Place {
	return places.Place{
		ID:               p.ID,
		Name:             p.DisplayName.Text,
		FormattedAddress: p.FormattedAddress,
		Phone:            p.InternationalPhoneNumber,
		Website:          p.WebsiteURI,
		Types:            p.Types,
		Lat:              p.Location.Latitude,
		Lng:              p.Location.Longitude,
	}
}

// findPlaceResponse is the answer of Find Place (legacy): HTTP 200 even for
// errors, which status reports.
type findPlaceResponse struct {
	Candidates   []legacyPlace `json:"candidates"`
	Status       string        `json:"status"`
	ErrorMessage string        `json:"error_message"`
}

// legacyPlace is a candidate of Find Place (legacy).
type legacyPlace struct {
	PlaceID          string   `json:"place_id"`
	Name             string   `json:"name"`
	FormattedAddress string   `json:"formatted_address"`
	Types            []string `json:"types"`
	Geometry         struct {
		Location struct {
			Lat float64 `json:"lat"`
			Lng float64 `json:"lng"`
		} `json:"location"`
	} `json:"geometry"`
}

func (p legacyPlace) place() places.Place {
	return places.Place{
		ID:               p.PlaceID,
		Name:             p.Name,
		FormattedAddress: p.FormattedAddress,
		Types:            p.Types,
		Lat:              p.Geometry.Location.Lat,
		Lng:              p.Geometry.Location.Lng,
	}
}
