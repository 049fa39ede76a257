// Package blob is the port for object storage with the semantics of Amazon
// S3: whole-object atomic writes, create-if-absent, ranged reads, listing by
// prefix with a delimiter, and presigned URLs that let a client upload or
// download without holding credentials.
//
// The embedded adapter (blob/file) and the AWS adapter (blob/s3) both pass
// the conformance suite in blob/blobtest.
package blob

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally"
)

// Limits and defaults shared by every adapter; they are S3's own where S3
// has one.
const (
	// MaxKeyBytes is S3's limit on a key's length in UTF-8 bytes.
	MaxKeyBytes = 1024
	// MaxListLimit is the largest page List returns (S3's MaxKeys).
	MaxListLimit = 1000
	// MaxPresignExpiry is the longest life of a presigned URL (SigV4's).
	MaxPresignExpiry = 7 * 24 * time.Hour
	// MaxContentTypeBytes bounds PutOptions.ContentType, which travels as an
	// HTTP header and is stored with every object.
	MaxContentTypeBytes = 1024
	// DefaultContentType is stored when PutOptions.ContentType is empty.
	DefaultContentType = "application/octet-stream"
)

// ErrExists is returned by PutIfAbsent when the key already holds an object.
// It matches tally.ErrConditionFailed as well, for callers that only care
// that a conditional write lost.
var ErrExists error = existsError{}

type existsError struct{}

func (existsError) Error() string        { return "object already exists" }
func (existsError) Is(target error) bool { return target == tally.ErrConditionFailed }

// Store is an object store.
type Store interface {
	// Put stores the whole of r under key, replacing any object there.
	// Readers see the old object or the new one, never a part.
	Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (Info, error)
	// PutIfAbsent stores r under key only if no object is there; otherwise
	// it returns ErrExists and writes nothing.
	PutIfAbsent(ctx context.Context, key string, r io.Reader, opts PutOptions) (Info, error)
	// Get opens the object for reading; tally.ErrNotFound if there is none.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// GetRange reads length bytes from offset (length < 0 means to the end).
	// A range running past the end is cut at the end, as S3 does. A range
	// starting at or past the end, a negative offset or a zero length is
	// tally.ErrInvalidArgument (see CheckRange).
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Head returns the object's metadata; tally.ErrNotFound if there is none.
	Head(ctx context.Context, key string) (Info, error)
	// List returns one page of keys under opts.Prefix in lexical order.
	List(ctx context.Context, opts ListOptions) (Page, error)
	// Delete removes the object. Deleting a missing key is not an error (as S3).
	Delete(ctx context.Context, key string) error
	// PresignPut returns a URL that accepts HTTP PUTs of the object with
	// the given Content-Type until expiry (at most MaxPresignExpiry).
	PresignPut(ctx context.Context, key, contentType string, expiry time.Duration) (string, error)
	// PresignGet returns a URL that serves HTTP GETs (including ranged
	// ones) of the object until expiry (at most MaxPresignExpiry).
	PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error)
}

// PutOptions describe the object being written.
type PutOptions struct {
	ContentType string // default DefaultContentType; see ValidateContentType
}

// Info is an object's metadata.
type Info struct {
	Key         string
	Size        int64
	ETag        string // quoted hex MD5 of the content for single-part objects, as S3
	ContentType string
	Modified    time.Time
}

// ListOptions select one page of a listing.
type ListOptions struct {
	Prefix string
	// Delimiter groups keys sharing a prefix up to the delimiter into
	// CommonPrefixes (usually "/"); empty lists every key.
	Delimiter string
	// Token continues a listing from a previous Page.NextToken.
	Token string
	// Limit is the page size, 1–MaxListLimit (0 means MaxListLimit). Objects
	// and common prefixes both count towards it, as in S3.
	Limit int
}

// Page is one page of a listing.
type Page struct {
	Objects        []Info
	CommonPrefixes []string
	// NextToken is empty on the last page.
	NextToken string
}

// ValidateKey rejects keys that are unsafe or that S3 would refuse, so every
// adapter treats the same keys the same way: empty, over MaxKeyBytes,
// invalid UTF-8, NUL or other control characters, a leading "/", and any
// "." or ".." path segment (a key can never name a path outside the store).
func ValidateKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("blob key %q: %s: %w", truncate(key), why, tally.ErrInvalidArgument)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyBytes:
		return bad(fmt.Sprintf("%d bytes, over the %d byte limit", len(key), MaxKeyBytes))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case strings.HasPrefix(key, "/"):
		return bad("absolute path")
	case strings.Contains(key, "\\"):
		return bad("contains a backslash")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return bad(fmt.Sprintf("contains control character %U", r))
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "." || seg == ".." {
			return bad("contains a . or .. segment")
		}
		if seg == "" {
			return bad("contains an empty path segment")
		}
	}
	return nil
}

// ValidateContentType rejects content types that cannot travel as an HTTP
// header value: longer than MaxContentTypeBytes, or with bytes outside
// printable ASCII. The empty string is valid (it means DefaultContentType).
func ValidateContentType(ct string) error {
	if len(ct) > MaxContentTypeBytes {
		return fmt.Errorf("content type of %d bytes, over the %d byte limit: %w", len(ct), MaxContentTypeBytes, tally.ErrInvalidArgument)
	}
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("content type %q: byte %#x is not printable ASCII: %w", truncate(ct), c, tally.ErrInvalidArgument)
		}
	}
	return nil
}

// ContentTypeOrDefault returns ct, or DefaultContentType when ct is empty.
func ContentTypeOrDefault(ct string) string {
	if ct == "" {
		return DefaultContentType
	}
	return ct
}

// ETag formats an MD5 digest as S3 reports the ETag of a single-part
// object: the lower-case hex digest in double quotes.
func ETag(md5sum []byte) string {
	return `"` + hex.EncodeToString(md5sum) + `"`
}

// CheckRange validates a GetRange request against an object of size bytes
// and returns how many bytes it reads, so that every adapter agrees with S3:
// a negative offset, a zero length, or an offset at or past the end is
// tally.ErrInvalidArgument; a length < 0 or one running past the end is cut
// at the end.
func CheckRange(offset, length, size int64) (int64, error) {
	switch {
	case offset < 0:
		return 0, fmt.Errorf("range offset %d is negative: %w", offset, tally.ErrInvalidArgument)
	case length == 0:
		return 0, fmt.Errorf("range length is 0: %w", tally.ErrInvalidArgument)
	case offset >= size:
		return 0, fmt.Errorf("range offset %d is at or past the end of a %d byte object: %w", offset, size, tally.ErrInvalidArgument)
	}
	if n := size - offset; length < 0 || length > n {
		return n, nil
	}
	return length, nil
}

// CheckExpiry validates the life of a presigned URL: positive and at most
// MaxPresignExpiry.
func CheckExpiry(d time.Duration) error {
	if d <= 0 || d > MaxPresignExpiry {
		return fmt.Errorf("presign expiry %v is outside (0, %v]: %w", d, MaxPresignExpiry, tally.ErrInvalidArgument)
	}
	return nil
}

// PageLimit turns ListOptions.Limit into a page size: 0 means MaxListLimit,
// larger values are capped at it (as S3 caps MaxKeys), negative ones are
// tally.ErrInvalidArgument.
func PageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, fmt.Errorf("list limit %d is negative: %w", limit, tally.ErrInvalidArgument)
	case limit == 0 || limit > MaxListLimit:
		return MaxListLimit, nil
	}
	return limit, nil
}

// EncodeToken makes an opaque, URL-safe continuation token from the last key
// or common prefix of a page, for adapters that list in key order and resume
// strictly after it. It stays valid across restarts and concurrent writes.
func EncodeToken(last string) string {
	return tokenVersion + base64.RawURLEncoding.EncodeToString([]byte(last))
}

// DecodeToken reverses EncodeToken; "" decodes to "" (start of listing) and
// anything malformed is tally.ErrInvalidArgument.
func DecodeToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	rest, ok := strings.CutPrefix(token, tokenVersion)
	if !ok {
		return "", fmt.Errorf("list token %q: unknown format: %w", truncate(token), tally.ErrInvalidArgument)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("list token %q: malformed: %w", truncate(token), tally.ErrInvalidArgument)
	}
	return string(b), nil
}

const tokenVersion = "t1."

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// ReadAll reads a whole object; a convenience over Get.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	rc, _, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", key, err)
	}
	return b, nil
}

// IsExists reports whether err means PutIfAbsent found the key taken.
func IsExists(err error) bool { return errors.Is(err, ErrExists) }
