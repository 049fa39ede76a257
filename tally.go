// Package tally holds the domain vocabulary shared by every port and adapter:
// the error kinds callers branch on and the build version.
//
// Tally turns photos and scans of receipts into structured, searchable
// records. The pipeline is built from ports (queue, blob, items, …), each an
// interface in its own package with an embedded adapter for one machine and
// an AWS adapter for many. Errors from every adapter wrap the sentinels below
// so that callers never need to know which backend they are talking to.
package tally

import "errors"

// The error kinds every port reports. Adapters wrap them with context
// (fmt.Errorf("get %q: %w", key, tally.ErrNotFound)); callers test them with
// errors.Is, never by string.
var (
	// ErrNotFound means the addressed object, item or message does not exist
	// (or has expired).
	ErrNotFound = errors.New("not found")

	// ErrConditionFailed means a conditional write was rejected because the
	// stored state did not match its condition. Nothing was written.
	ErrConditionFailed = errors.New("condition failed")

	// ErrInvalidArgument means the request itself is malformed (bad key, too
	// large, unknown index, unparsable expression). Retrying cannot help.
	ErrInvalidArgument = errors.New("invalid argument")
)

// Version is the build version, set at link time with
// -ldflags "-X github.com/tallyhq/tally.Version=…".
var Version = "dev"
