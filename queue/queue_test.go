package queue_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/queue"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"ocr-jobs", true},
		{"A_b-9", true},
		{strings.Repeat("q", 80), true},
		{"", false},
		{strings.Repeat("q", 81), false},
		{"a.fifo", false},
		{"a b", false},
		{"ä", false},
	} {
		err := queue.ValidateName(tc.name)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, tally.ErrInvalidArgument)) {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestValidateBody(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		attrs map[string]string
		ok    bool
	}{
		{"plain", "hello", nil, true},
		{"unicode", "東京 🧾 \t\r\n", map[string]string{"a.b-c_d": "✓"}, true},
		{"max size", strings.Repeat("x", queue.MaxBodyBytes), nil, true},
		{"max size with attribute", strings.Repeat("x", queue.MaxBodyBytes-len("kStringv")), map[string]string{"k": "v"}, true},
		{"over size with attribute", strings.Repeat("x", queue.MaxBodyBytes-len("kStringv")+1), map[string]string{"k": "v"}, false},
		{"empty", "", nil, false},
		{"NUL", "\x00", nil, false},
		{"U+FFFE", "\uFFFE", nil, false},
		{"invalid UTF-8", "\xc3", nil, false},
		{"AWS. prefix", "x", map[string]string{"aws.trace": "v"}, false},
		{"Amazon. prefix", "x", map[string]string{"Amazon.x": "v"}, false},
		{"leading dot", "x", map[string]string{".k": "v"}, false},
		{"trailing dot", "x", map[string]string{"k.": "v"}, false},
		{"double dot", "x", map[string]string{"a..b": "v"}, false},
		{"long name", "x", map[string]string{strings.Repeat("n", 257): "v"}, false},
		{"empty value", "x", map[string]string{"k": ""}, false},
		{"bad value", "x", map[string]string{"k": "\x1f"}, false},
		{"eleven attributes", "x", map[string]string{"a": "1", "b": "1", "c": "1", "d": "1", "e": "1", "f": "1", "g": "1", "h": "1", "i": "1", "j": "1", "k": "1"}, false},
	} {
		err := queue.ValidateBody(tc.body, tc.attrs)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, tally.ErrInvalidArgument)) {
			t.Errorf("%s: ValidateBody = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestValidateSendBatch(t *testing.T) {
	e := func(id, body string) queue.SendEntry { return queue.SendEntry{ID: id, Body: body} }
	half := strings.Repeat("h", queue.MaxBatchBytes/2)
	for _, tc := range []struct {
		name    string
		entries []queue.SendEntry
		ok      bool
	}{
		{"one", []queue.SendEntry{e("a", "x")}, true},
		{"ten", make([]queue.SendEntry, 10), true},
		{"exactly the batch limit", []queue.SendEntry{e("a", half), e("b", half)}, true},
		{"bad bodies are per entry", []queue.SendEntry{e("a", ""), e("b", "\x00")}, true},
		{"none", nil, false},
		{"eleven", make([]queue.SendEntry, 11), false},
		{"over the batch limit", []queue.SendEntry{e("a", half), e("b", half+"!")}, false},
		{"duplicate", []queue.SendEntry{e("a", "x"), e("a", "y")}, false},
		{"filled id collides", []queue.SendEntry{e("1", "x"), e("", "y")}, false},
		{"bad id", []queue.SendEntry{e("a.b", "x")}, false},
	} {
		out, err := queue.ValidateSendBatch(tc.entries)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, tally.ErrInvalidArgument)) {
			t.Errorf("%s: ValidateSendBatch = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		for i, o := range out {
			if o.ID == "" || (tc.entries[i].ID != "" && o.ID != tc.entries[i].ID) {
				t.Errorf("%s: entry %d id %q", tc.name, i, o.ID)
			}
		}
	}
	in := []queue.SendEntry{{Body: "x"}}
	if out, _ := queue.ValidateSendBatch(in); out[0].ID != "0" || in[0].ID != "" {
		t.Errorf("filled id %q, input changed to %q", out[0].ID, in[0].ID)
	}
}

func TestValidateEntry(t *testing.T) {
	d := func(v time.Duration) *time.Duration { return &v }
	for _, tc := range []struct {
		name string
		e    queue.SendEntry
		ok   bool
	}{
		{"no delay", queue.SendEntry{Body: "x"}, true},
		{"zero delay", queue.SendEntry{Body: "x", Delay: d(0)}, true},
		{"max delay", queue.SendEntry{Body: "x", Delay: d(queue.MaxDelay)}, true},
		{"negative delay", queue.SendEntry{Body: "x", Delay: d(-time.Second)}, false},
		{"delay too long", queue.SendEntry{Body: "x", Delay: d(queue.MaxDelay + 1)}, false},
		{"bad body", queue.SendEntry{Body: ""}, false},
	} {
		err := queue.ValidateEntry(tc.e)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, tally.ErrInvalidArgument)) {
			t.Errorf("%s: ValidateEntry = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestValidateReceive(t *testing.T) {
	for _, tc := range []struct {
		opts    queue.ReceiveOptions
		wantMax int
		ok      bool
	}{
		{queue.ReceiveOptions{}, 1, true},
		{queue.ReceiveOptions{Max: 10, Wait: queue.MaxWait, Visibility: queue.MaxVisibility}, 10, true},
		{queue.ReceiveOptions{Max: 11}, 0, false},
		{queue.ReceiveOptions{Max: -1}, 0, false},
		{queue.ReceiveOptions{Wait: queue.MaxWait + 1}, 0, false},
		{queue.ReceiveOptions{Wait: -1}, 0, false},
		{queue.ReceiveOptions{Visibility: -1}, 0, false},
		{queue.ReceiveOptions{Visibility: queue.MaxVisibility + 1}, 0, false},
	} {
		got, err := queue.ValidateReceive(tc.opts)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, tally.ErrInvalidArgument)) {
			t.Errorf("ValidateReceive(%+v) = %v, want ok=%v", tc.opts, err, tc.ok)
		}
		if tc.ok && got.Max != tc.wantMax {
			t.Errorf("ValidateReceive(%+v).Max = %d, want %d", tc.opts, got.Max, tc.wantMax)
		}
	}
}

func TestValidateConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  queue.Config
		ok   bool
	}{
		{"zero", queue.Config{}, true},
		{"limits", queue.Config{VisibilityTimeout: queue.MaxVisibility, Retention: queue.MaxRetention, Delay: queue.MaxDelay}, true},
		{"redrive", queue.Config{DeadLetter: "dlq", MaxReceiveCount: 5}, true},
		{"negative visibility", queue.Config{VisibilityTimeout: -1}, false},
		{"long visibility", queue.Config{VisibilityTimeout: queue.MaxVisibility + 1}, false},
		{"long retention", queue.Config{Retention: queue.MaxRetention + 1}, false},
		{"long delay", queue.Config{Delay: queue.MaxDelay + 1}, false},
		{"dead letter without count", queue.Config{DeadLetter: "dlq"}, false},
		{"count without dead letter", queue.Config{MaxReceiveCount: 3}, false},
		{"bad dead letter name", queue.Config{DeadLetter: "a b", MaxReceiveCount: 3}, false},
	} {
		err := queue.ValidateConfig(tc.cfg)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, tally.ErrInvalidArgument)) {
			t.Errorf("%s: ValidateConfig = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
