// Package places is the port for looking a merchant up in a places directory
// (Google Places in production): by the phone number, address or website
// printed on a receipt, or by free text such as the merchant's name.
//
// The merchant resolver depends on Client, not on Google, so it can run with
// a fake in tests and with no directory at all on a machine without an API
// key. Cache wraps any Client with the item store, because directory lookups
// cost money and receipts from the same store repeat the same queries.
package places

import (
	"context"
	"errors"
	"regexp"

	"github.com/tallyhq/tally"
)

// Place is one business or address as the directory knows it. Fields the
// directory did not return are empty.
type Place struct {
	// ID is the directory's stable identifier (a Google place ID).
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// FormattedAddress is the one-line postal address.
	FormattedAddress string `json:"formatted_address,omitempty"`
	// Phone is the international form ("+1 800-555-1234"), comparable
	// across countries once the caller strips its punctuation.
	Phone   string   `json:"phone,omitempty"`
	Website string   `json:"website,omitempty"`
	Types   []string `json:"types,omitempty"`
	Lat     float64  `json:"lat,omitempty"`
	Lng     float64  `json:"lng,omitempty"`
}

// Client looks places up. Lookups that find nothing return an empty list
// and a nil error, so that "no such merchant" is not confused with failure.
type Client interface {
	// FindByPhone finds the places listed under a phone number in E.164
	// form (+18005551234); anything else is ErrInvalidArgument.
	FindByPhone(ctx context.Context, e164 string) ([]Place, error)
	// FindByText finds places matching free text: an address, a name, a
	// name with a city.
	FindByText(ctx context.Context, text string) ([]Place, error)
	// Details returns one place by ID; ErrNotFound if there is none.
	Details(ctx context.Context, id string) (Place, error)
}

// The error kinds a Client reports; callers test them with errors.Is.
var (
	// ErrNotFound means the place ID does not (or no longer) exist. It is
	// tally.ErrNotFound, so generic handlers treat it like any other miss.
	ErrNotFound = tally.ErrNotFound

	// ErrInvalidArgument means the request itself was rejected (a phone
	// number not in E.164, empty text, a malformed ID). Retrying cannot
	// help. It is tally.ErrInvalidArgument.
	ErrInvalidArgument = tally.ErrInvalidArgument

	// ErrQuota means the directory refused because a rate or billing quota
	// was exceeded, even after retries. Later lookups may succeed, so
	// callers should resolve without the directory for now, not give up on
	// the receipt.
	ErrQuota = errors.New("places quota exceeded")

	// ErrDenied means the directory refused the credentials (missing or
	// invalid API key, API not enabled). Every lookup will fail until
	// someone fixes the configuration, so it is worth an alert.
	ErrDenied = errors.New("places request denied")
)

var e164Pattern = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// ValidE164 reports whether s is a phone number in E.164 form: "+", a
// country code that does not start with 0, and 8 to 15 digits in all. The
// directory matches phone numbers only in this form, so callers normalize
// first and check here.
func ValidE164(s string) bool { return e164Pattern.MatchString(s) }
