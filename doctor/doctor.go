// Package doctor runs the troubleshooting checklist the old system kept as
// a manual page: does every port answer, are messages stuck in flight, what
// is in the dead-letter queues and why, are jobs, compaction runs or leases
// stuck, is the vector store whole. Each finding that needs a person names
// the exact command that fixes it.
//
// Checks on the deployment itself (Lambda functions, event source mappings,
// ENIs, EFS mount targets, CloudWatch Logs) live in doctor/awscheck, so this
// package knows no backend.
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Status is the outcome of one check.
type Status string

// The three outcomes; they map to the exit status of `tally doctor`.
const (
	// OK: the thing checked is healthy.
	OK Status = "ok"
	// Problem: the check ran and found something wrong.
	Problem Status = "problem"
	// Unknown: the check could not run (no permission, no answer), so
	// nothing is known either way.
	Unknown Status = "unknown"
)

// Check is one finding.
type Check struct {
	// Name says what was checked, e.g. "queue ocr-results" or
	// "function tally-dev-process".
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail is one line a person reads: the numbers, or what is wrong.
	Detail string `json:"detail"`
	// Fix is the exact command that fixes a problem, when one exists.
	Fix string `json:"fix,omitempty"`
	// Latency is how long the check's request took, for port probes.
	Latency time.Duration `json:"latency_ns,omitempty"`
	// Data holds the measured values for machines (-json).
	Data map[string]any `json:"data,omitempty"`
}

// Report is every check of one run.
type Report struct {
	Checks []Check `json:"checks"`
}

// Add appends checks.
func (r *Report) Add(c ...Check) { r.Checks = append(r.Checks, c...) }

// Status is Problem if any check found one, else Unknown if any check could
// not run, else OK: a found problem is what a person acts on first.
func (r Report) Status() Status {
	switch {
	case slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Status == Problem }):
		return Problem
	case slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Status == Unknown }):
		return Unknown
	}
	return OK
}

// ExitCode is `tally doctor`'s exit status: 0 healthy, 1 problems, 2 could
// not check.
func (r Report) ExitCode() int {
	switch r.Status() {
	case Problem:
		return 1
	case Unknown:
		return 2
	}
	return 0
}

// WriteText prints the report for a person: one line per check, problems'
// fixes indented beneath them.
func (r Report) WriteText(w io.Writer) error {
	mark := map[Status]string{OK: "ok     ", Problem: "PROBLEM", Unknown: "UNKNOWN"}
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%s  %s: %s", mark[c.Status], c.Name, c.Detail)
		if c.Latency > 0 {
			fmt.Fprintf(&b, " (%s)", c.Latency.Round(10*time.Microsecond))
		}
		b.WriteByte('\n')
		if c.Fix != "" {
			for _, line := range strings.Split(c.Fix, "\n") {
				fmt.Fprintf(&b, "           fix: %s\n", line)
			}
		}
	}
	fmt.Fprintf(&b, "\n%s: %d checks, %d problems, %d could not run\n", r.Status(), len(r.Checks),
		r.count(Problem), r.count(Unknown))
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report for machines.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Status Status  `json:"status"`
		Checks []Check `json:"checks"`
	}{r.Status(), r.Checks})
}

func (r Report) count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}
