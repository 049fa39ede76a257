package compaction

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/vector"
)

// Limits on a message's fields. They keep every field usable in item keys
// and attribute names, and reject garbage before it reaches the store.
const (
	// MaxReceiptID is the largest receipt id; keys format it as %05d.
	MaxReceiptID = 99999
	// MaxImageIDBytes bounds image_id (it becomes part of a partition key).
	MaxImageIDBytes = 256
	// MaxCollections bounds how many collections one run may name.
	MaxCollections = 16

	// maxRunIDBytes is vector.ValidateRunID's limit, checked first so that
	// an absurd run id is not quoted whole in the error.
	maxRunIDBytes = 160
	// maxCollectionBytes is vector.ValidateCollection's limit, checked
	// first for the same reason.
	maxCollectionBytes = 63
)

// Message asks the compactor to merge one run's vector deltas and mark the
// run complete. The process worker sends one per CompactionRun it creates;
// the rescuer re-sends it for runs left pending.
type Message struct {
	RunID       string   `json:"run_id"`
	ImageID     string   `json:"image_id"`
	ReceiptID   int      `json:"receipt_id"`
	Collections []string `json:"collections"`
}

// Decode parses and validates a message body. Any problem wraps
// tally.ErrInvalidArgument: such a message can never succeed, however often
// it is retried.
func Decode(body string) (Message, error) {
	var m Message
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return Message{}, fmt.Errorf("compaction message %q: malformed JSON: %v: %w", clip(body), err, tally.ErrInvalidArgument)
	}
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Encode returns the message's JSON body after validating it, so a bad
// message is refused at the sender rather than dead-lettered later.
func (m Message) Encode() (string, error) {
	if err := m.Validate(); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return "", fmt.Errorf("encode compaction message for run %s: %w", m.RunID, err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// Validate checks every field; problems wrap tally.ErrInvalidArgument.
func (m Message) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("compaction message for run %q: %s: %w", clip(m.RunID), fmt.Sprintf(format, args...), tally.ErrInvalidArgument)
	}
	if m.RunID == "" {
		return bad("missing run_id")
	}
	if len(m.RunID) > maxRunIDBytes {
		return fmt.Errorf("compaction message: run_id %q is %d bytes, over %d: %w", clip(m.RunID), len(m.RunID), maxRunIDBytes, tally.ErrInvalidArgument)
	}
	if err := vector.ValidateRunID(m.RunID); err != nil {
		return fmt.Errorf("compaction message: %w", err)
	}
	if err := validateImageID(m.ImageID); err != nil {
		return bad("%v", err)
	}
	if m.ReceiptID < 1 || m.ReceiptID > MaxReceiptID {
		return bad("receipt_id %d is outside 1..%d", m.ReceiptID, MaxReceiptID)
	}
	if len(m.Collections) == 0 {
		return bad("no collections")
	}
	if len(m.Collections) > MaxCollections {
		return bad("%d collections, more than %d", len(m.Collections), MaxCollections)
	}
	seen := make(map[string]bool, len(m.Collections))
	for _, c := range m.Collections {
		if len(c) > maxCollectionBytes {
			// vector.ValidateCollection would quote it whole.
			return bad("collection %q is %d bytes, over %d", clip(c), len(c), maxCollectionBytes)
		}
		if err := vector.ValidateCollection(c); err != nil {
			return fmt.Errorf("compaction message for run %q: %w", m.RunID, err)
		}
		if seen[c] {
			return bad("collection %q is listed twice", c)
		}
		seen[c] = true
	}
	return nil
}

func validateImageID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("missing image_id")
	case len(id) > MaxImageIDBytes:
		return fmt.Errorf("image_id of %d bytes, over %d", len(id), MaxImageIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("image_id is not valid UTF-8")
	case strings.Contains(id, "#"):
		return fmt.Errorf("image_id %q contains '#', the key separator", id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("image_id %q contains control character %U", clip(id), r)
		}
	}
	return nil
}

// Enqueue sends m to the compaction queue. Call it after CreateRun: a run
// without a message is found by the rescuer, a message without a run fails.
func Enqueue(ctx context.Context, q queue.Queue, m Message) error {
	body, err := m.Encode()
	if err != nil {
		return err
	}
	if _, err := queue.Send(ctx, q, body, nil); err != nil {
		return fmt.Errorf("enqueue compaction of run %s on %s: %w", m.RunID, q.Name(), err)
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 120
	if len(s) <= n {
		return s
	}
	for i := n; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}
