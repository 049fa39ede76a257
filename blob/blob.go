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
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally"
)

// MaxKeyBytes is S3's limit on a key's length in UTF-8 bytes.
const MaxKeyBytes = 1024

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
	// A range starting at or past the end is tally.ErrInvalidArgument.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Head returns the object's metadata; tally.ErrNotFound if there is none.
	Head(ctx context.Context, key string) (Info, error)
	// List returns one page of keys under opts.Prefix in lexical order.
	List(ctx context.Context, opts ListOptions) (Page, error)
	// Delete removes the object. Deleting a missing key is not an error (as S3).
	Delete(ctx context.Context, key string) error
	// PresignPut returns a URL that accepts one HTTP PUT of the object with
	// the given Content-Type until expiry.
	PresignPut(ctx context.Context, key, contentType string, expiry time.Duration) (string, error)
	// PresignGet returns a URL that serves an HTTP GET of the object until expiry.
	PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error)
}

// PutOptions describe the object being written.
type PutOptions struct {
	ContentType string // default application/octet-stream
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
	// Limit is the page size, 1–1000 (0 means 1000).
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
