package doctor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/lease"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/redrive"
	"github.com/tallyhq/tally/upload"
	"github.com/tallyhq/tally/vector"
)

// QueuePair is one pipeline queue and its dead-letter queue.
type QueuePair struct {
	Source, DeadLetter queue.Queue
}

// Config is what one doctor run looks at. Nil parts are not checked.
type Config struct {
	Items  items.Table
	Blob   blob.Store
	Queues []QueuePair
	// Vectors and Collections name the vector store to check; Cache is this
	// process's segment cache (its mode, probe and size).
	Vectors     *vector.Store
	Collections []string
	Cache       *vector.Cache
	// StuckAfter: a PENDING OCR job without progress this long is stuck
	// (default upload.DefaultStuckAfter).
	StuckAfter time.Duration
	// RescueAfter: a compaction run pending this long should have been
	// rescued (default compaction.DefaultRescueAfter).
	RescueAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// probeKey is a key no one writes: reading it must answer not-found.
var probeKey = items.Key{PK: "HEALTH#probe", SK: "HEALTH"}

// Probe makes one real request of each port and times it: a read of a key
// that does not exist must come back not-found, not fail. It is what GET
// /healthz reports and the first thing `tally doctor` checks.
func Probe(ctx context.Context, t items.Table, b blob.Store, qs []queue.Queue) ([]Check, map[string]queue.Stats) {
	var out []Check
	timed := func(name string, fn func() error) error {
		start := time.Now()
		err := fn()
		c := Check{Name: name, Status: OK, Detail: "answers", Latency: max(time.Since(start), time.Nanosecond)}
		if err != nil && !errors.Is(err, tally.ErrNotFound) {
			c.Status, c.Detail = Unknown, err.Error()
		} else {
			err = nil
		}
		out = append(out, c)
		return err
	}
	if t != nil {
		timed("items", func() error { _, err := t.Get(ctx, probeKey); return err })
	}
	if b != nil {
		timed("blob", func() error { _, err := b.Head(ctx, "health/probe"); return err })
	}
	stats := map[string]queue.Stats{}
	for _, q := range qs {
		var st queue.Stats
		if timed("queue "+q.Name(), func() (err error) { st, err = q.Stats(ctx); return err }) == nil {
			stats[q.Name()] = st
			c := &out[len(out)-1]
			c.Detail = fmt.Sprintf("%d visible, %d in flight, %d delayed, oldest %s, visibility timeout %s",
				st.Visible, st.InFlight, st.Delayed, age(st.OldestAge), st.Visibility)
			c.Data = map[string]any{"visible": st.Visible, "in_flight": st.InFlight, "delayed": st.Delayed,
				"oldest_age_seconds": st.OldestAge.Seconds(), "visibility_timeout_seconds": st.Visibility.Seconds()}
		}
	}
	return out, stats
}

// Run runs every check cfg allows, in the order a person reads them:
// ports, queues, dead letters, jobs and runs, leases, vectors, storage.
func Run(ctx context.Context, cfg Config) Report {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StuckAfter <= 0 {
		cfg.StuckAfter = upload.DefaultStuckAfter
	}
	if cfg.RescueAfter <= 0 {
		cfg.RescueAfter = compaction.DefaultRescueAfter
	}
	var r Report
	var all []queue.Queue
	for _, p := range cfg.Queues {
		all = append(all, p.Source, p.DeadLetter)
	}
	probes, stats := Probe(ctx, cfg.Items, cfg.Blob, all)
	r.Add(probes...)
	for _, p := range cfg.Queues {
		r.Add(queueChecks(ctx, cfg, p, stats)...)
	}
	if cfg.Items != nil {
		r.Add(jobChecks(ctx, cfg)...)
		r.Add(runChecks(ctx, cfg)...)
	}
	if cfg.Vectors != nil {
		r.Add(vectorChecks(ctx, cfg)...)
	}
	if cfg.Cache != nil {
		r.Add(cacheCheck(cfg.Cache))
	}
	return r
}

// queueChecks reports a queue's stuck messages, and its dead-letter queue
// grouped by failure reason (the probe reported its depth).
func queueChecks(ctx context.Context, cfg Config, p QueuePair, stats map[string]queue.Stats) []Check {
	name := p.Source.Name()
	st, ok := stats[name]
	if !ok {
		return nil // the probe already reported it
	}
	var out []Check
	if in, ok := p.Source.(queue.Inspector); ok {
		out = append(out, stuckCheck(ctx, cfg, name, in, st))
	} else if st.InFlight > 0 {
		out = append(out, Check{Name: "in flight " + name, Status: OK,
			Detail: fmt.Sprintf("%d in flight; this queue cannot list them (SQS gives their handles only to the consumer), so a stuck one shows as in flight until its %s timeout ends", st.InFlight, st.Visibility)})
	}
	dst, ok := stats[p.DeadLetter.Name()]
	if !ok {
		return out
	}
	dead := dst.Visible + dst.InFlight + dst.Delayed
	if dead == 0 {
		out = append(out, Check{Name: "dead letters " + p.DeadLetter.Name(), Status: OK, Detail: "empty", Data: map[string]any{"depth": 0}})
		return out
	}
	return append(out, deadLetterChecks(ctx, cfg, p, dead)...)
}

// stuckCheck names messages in flight for longer than twice their queue's
// visibility timeout: a consumer that keeps extending a message it will
// never finish (the old system's messages stuck in flight).
func stuckCheck(ctx context.Context, cfg Config, name string, in queue.Inspector, st queue.Stats) Check {
	c := Check{Name: "in flight " + name, Status: OK}
	if st.InFlight == 0 {
		c.Detail = "none"
		return c
	}
	list, err := in.InFlight(ctx, 1000)
	if err != nil {
		c.Status, c.Detail = Unknown, err.Error()
		return c
	}
	limit := 2 * st.Visibility
	now := cfg.Now()
	var stuck []string
	for _, m := range list {
		if d := now.Sub(m.ReceivedAt); d > limit {
			stuck = append(stuck, fmt.Sprintf("%s (in flight %s, received %d times)", m.ID, d.Round(time.Second), m.ReceiveCount))
		}
	}
	c.Data = map[string]any{"in_flight": len(list), "stuck": len(stuck), "stuck_after_seconds": limit.Seconds()}
	if len(stuck) == 0 {
		c.Detail = fmt.Sprintf("%d in flight, none longer than %s (2× the visibility timeout)", len(list), limit)
		return c
	}
	c.Status = Problem
	c.Detail = fmt.Sprintf("%d stuck in flight longer than %s (2× the visibility timeout): %s", len(stuck), limit, firstFew(stuck, 3))
	c.Fix = fmt.Sprintf("tally reset-visibility %s -older %s", name, limit)
	return c
}

// deadLetterChecks groups a dead-letter queue's messages by failure reason,
// each group with its count, its newest example and the redrive command.
func deadLetterChecks(ctx context.Context, cfg Config, p QueuePair, depth int) []Check {
	name := p.DeadLetter.Name()
	if cfg.Items == nil {
		return []Check{{Name: "dead letters " + name, Status: Problem, Detail: fmt.Sprintf("%d messages", depth),
			Fix: "tally redrive " + p.Source.Name()}}
	}
	const survey = 1000
	rep, err := redrive.Run(ctx, redrive.Config{From: p.DeadLetter, To: p.Source, Items: cfg.Items, DryRun: true, Max: survey})
	if err != nil {
		return []Check{{Name: "dead letters " + name, Status: Unknown, Detail: fmt.Sprintf("%d messages; reading them: %v", depth, err)}}
	}
	reasons := make([]string, 0, len(rep.Reasons))
	for why := range rep.Reasons {
		reasons = append(reasons, why)
	}
	sort.Slice(reasons, func(i, j int) bool {
		return rep.Reasons[reasons[i]] > rep.Reasons[reasons[j]] || (rep.Reasons[reasons[i]] == rep.Reasons[reasons[j]] && reasons[i] < reasons[j])
	})
	out := []Check{{Name: "dead letters " + name, Status: Problem,
		Detail: fmt.Sprintf("%d messages in %d failure reasons", depth, len(reasons)), Data: map[string]any{"depth": depth},
		Fix: "tally redrive " + p.Source.Name() + "   # after fixing the cause; -dry-run shows what would move"}}
	for _, why := range reasons {
		ex := rep.Newest[why]
		label := why
		if label == "" {
			label = "(no failure_reason)"
		}
		fix := fmt.Sprintf("tally redrive %s -reason %s", p.Source.Name(), shellQuote(why))
		if why == "" {
			fix = ""
		}
		out = append(out, Check{Name: "dead letters " + name, Status: Problem,
			Detail: fmt.Sprintf("%d × %s; newest sent %s: %s", rep.Reasons[why], label, ex.SentAt.UTC().Format(time.RFC3339), excerpt(ex.Body, 120)),
			Fix:    fix,
			Data:   map[string]any{"reason": why, "count": rep.Reasons[why], "newest_message_id": ex.ID, "newest_sent_at": ex.SentAt.UTC()}})
	}
	return out
}

// jobChecks reports OCR jobs PENDING without progress past StuckAfter, and
// how many failed.
func jobChecks(ctx context.Context, cfg Config) []Check {
	const limit = 1000
	now := cfg.Now()
	c := Check{Name: "ocr jobs", Status: OK}
	pending, err := ocrjob.JobsWithStatus(ctx, cfg.Items, ocrjob.StatusPending, limit)
	if err != nil {
		return []Check{{Name: "ocr jobs", Status: Unknown, Detail: err.Error()}}
	}
	var stuck []ocrjob.Job
	for _, j := range pending {
		if upload.Stuck(j, cfg.StuckAfter, now) {
			stuck = append(stuck, j)
		}
	}
	failed, err := ocrjob.JobsWithStatus(ctx, cfg.Items, ocrjob.StatusFailed, limit)
	if err != nil {
		return []Check{{Name: "ocr jobs", Status: Unknown, Detail: err.Error()}}
	}
	c.Data = map[string]any{"pending": len(pending), "stuck": len(stuck), "failed": len(failed)}
	c.Detail = fmt.Sprintf("%s pending, none without progress for %s; %s failed", atLeast(len(pending), limit), cfg.StuckAfter, atLeast(len(failed), limit))
	if len(failed) > 0 {
		c.Detail += fmt.Sprintf(" (newest: %s, %q; `tally retry %s` runs one again)", failed[0].ImageID, excerpt(failed[0].Reason, 80), failed[0].ImageID)
	}
	if len(stuck) == 0 {
		return []Check{c}
	}
	c.Status = Problem
	var ids, fixes []string
	for _, j := range stuck {
		ids = append(ids, fmt.Sprintf("%s (%s since %s)", j.ImageID, j.Stage, j.UpdatedAt.UTC().Format(time.RFC3339)))
		if len(fixes) < 10 {
			fixes = append(fixes, "tally retry "+j.ImageID)
		}
	}
	c.Detail = fmt.Sprintf("%d of %s pending made no progress for %s: %s", len(stuck), atLeast(len(pending), limit), cfg.StuckAfter, firstFew(ids, 3))
	c.Fix = strings.Join(fixes, "\n")
	return []Check{c}
}

// runChecks reports compaction runs pending past the rescuer's threshold:
// the rescuer re-sends those, so they mean no compactor is running.
func runChecks(ctx context.Context, cfg Config) []Check {
	runs, more, err := compaction.Overdue(ctx, cfg.Items, cfg.RescueAfter, cfg.Now(), 100)
	if err != nil {
		return []Check{{Name: "compaction runs", Status: Unknown, Detail: err.Error()}}
	}
	c := Check{Name: "compaction runs", Status: OK, Detail: fmt.Sprintf("none pending longer than %s", cfg.RescueAfter),
		Data: map[string]any{"pending_past_rescue": len(runs)}}
	if len(runs) == 0 {
		return []Check{c}
	}
	var names []string
	for _, r := range runs {
		names = append(names, fmt.Sprintf("%s of image %s (rescued %d times)", r.RunID, r.ImageID, r.RescueCount))
	}
	c.Status = Problem
	n := fmt.Sprint(len(runs))
	if more {
		n = "over " + n
	}
	c.Detail = fmt.Sprintf("%s runs pending longer than %s, the rescuer's threshold: %s", n, cfg.RescueAfter, firstFew(names, 3))
	c.Fix = "tally worker -role compact   # its rescuer re-sends runs pending past the threshold; see its log if one runs already"
	return []Check{c}
}

// vectorChecks reports each collection's head version, pending and
// quarantined deltas, files the head needs but the store lacks, and its
// compaction lease.
func vectorChecks(ctx context.Context, cfg Config) []Check {
	var out []Check
	now := cfg.Now()
	for _, coll := range cfg.Collections {
		st, err := cfg.Vectors.Status(ctx, coll)
		if err != nil {
			out = append(out, Check{Name: "vectors " + coll, Status: Unknown, Detail: err.Error()})
			continue
		}
		c := Check{Name: "vectors " + coll, Status: OK,
			Detail: fmt.Sprintf("version %d: %d records in %d segments; %d deltas pending", st.Version, st.Records, st.Segments, st.Pending),
			Data: map[string]any{"version": st.Version, "records": st.Records, "segments": st.Segments,
				"pending_deltas": st.Pending, "quarantined_deltas": len(st.Quarantined), "missing_files": st.Missing}}
		if st.Pending > 0 {
			c.Detail += fmt.Sprintf(" (oldest %s)", age(now.Sub(st.OldestPending)))
		}
		out = append(out, c)
		for _, d := range st.Quarantined {
			out = append(out, Check{Name: "vectors " + coll, Status: Problem,
				Detail: fmt.Sprintf("delta of run %s quarantined: %s", d.RunID, excerpt(d.Quarantined, 160)),
				Fix:    "write the run again: `tally retry IMAGE_ID` for the run's image reprocesses it, and a rewritten delta lifts the quarantine"})
		}
		if len(st.Missing) > 0 {
			out = append(out, Check{Name: "vectors " + coll, Status: Problem,
				Detail: fmt.Sprintf("version %d references %d files the blob store lacks: %s", st.Version, len(st.Missing), firstFew(st.Missing, 3)),
				Fix:    "restore the files from the bucket's versions (aws s3api list-object-versions), or roll the head back to the previous version"})
		}
		out = append(out, leaseCheck(ctx, cfg, coll, st, now))
	}
	return out
}

// leaseCheck reports who holds a collection's compaction lease. An expired
// lease is harmless (the next compactor takes it over) unless deltas wait:
// then its holder died mid-merge and nothing replaced it.
func leaseCheck(ctx context.Context, cfg Config, coll string, st vector.Status, now time.Time) Check {
	name := coll + compaction.LeaseSuffix
	c := Check{Name: "lease " + name, Status: OK}
	h, err := lease.Inspect(ctx, cfg.Items, name)
	switch {
	case errors.Is(err, tally.ErrNotFound):
		c.Detail = "never taken"
		return c
	case err != nil:
		c.Status, c.Detail = Unknown, err.Error()
		return c
	}
	c.Data = map[string]any{"owner": h.Owner, "epoch": h.Epoch, "expires": h.Expires.UTC()}
	if h.Expires.After(now) {
		c.Detail = fmt.Sprintf("held by %s until %s (epoch %d)", h.Owner, h.Expires.UTC().Format(time.RFC3339), h.Epoch)
		return c
	}
	c.Detail = fmt.Sprintf("free: last held by %s, expired %s ago (epoch %d)", h.Owner, now.Sub(h.Expires).Round(time.Second), h.Epoch)
	if st.Pending > 0 && now.Sub(st.OldestPending) > cfg.RescueAfter {
		c.Status = Problem
		c.Detail += fmt.Sprintf("; %d deltas have waited since %s with no compactor", st.Pending, st.OldestPending.UTC().Format(time.RFC3339))
		c.Fix = "tally worker -role compact"
	}
	return c
}

// cacheCheck reports the vector storage mode, the mount probe and the local
// cache's size.
func cacheCheck(cache *vector.Cache) Check {
	mode, why := cache.Mode()
	c := Check{Name: "vector storage", Status: OK, Detail: fmt.Sprintf("mode %s (%s)", mode, why),
		Data: map[string]any{"mode": string(mode), "reason": why, "probe_seconds": cache.ProbeTook().Seconds()}}
	if p := cache.ProbeTook(); p > 0 {
		c.Detail += fmt.Sprintf("; mount probe took %s", p.Round(time.Millisecond))
	}
	bytes, files, err := cache.Size()
	if err != nil {
		c.Status, c.Detail = Unknown, c.Detail+"; "+err.Error()
		return c
	}
	c.Data["cache_bytes"], c.Data["cache_files"] = bytes, files
	c.Detail += fmt.Sprintf("; local cache %d files, %.1f MB", files, float64(bytes)/1e6)
	return c
}

func age(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return d.Round(time.Second).String()
}

func atLeast(n, limit int) string {
	if n >= limit {
		return fmt.Sprintf("at least %d", n)
	}
	return fmt.Sprint(n)
}

func firstFew(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
}

// excerpt shortens s to n runes on one line.
func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
