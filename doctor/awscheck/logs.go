package awscheck

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/tallyhq/tally/doctor"
)

// logPattern selects the lines that can be init errors or timeouts; it is
// deliberately wide (CloudWatch's filter syntax cannot say "INIT_REPORT
// and Status: timeout"), and classify decides.
const logPattern = `?"Task timed out" ?INIT_REPORT`

// logCounts are the failures found in a function's recent logs.
type logCounts struct {
	initTimeouts, initErrors, timeouts int
	newest                             *logtypes.FilteredLogEvent
}

// classify counts one log line: Lambda writes "INIT_REPORT Init Duration:
// … Status: timeout" (or "Status: error" with an error type) when the init
// phase fails, and "<request> Task timed out after N seconds" when an
// invocation runs out of time. It reports whether the line counted.
func (lc *logCounts) classify(msg string) bool {
	switch {
	case strings.Contains(msg, "INIT_REPORT") && strings.Contains(msg, "Status: timeout"):
		lc.initTimeouts++
	case strings.Contains(msg, "INIT_REPORT") && strings.Contains(msg, "Status: error"):
		lc.initErrors++
	case strings.Contains(msg, "Task timed out"):
		lc.timeouts++
	default:
		return false
	}
	return true
}

// recentLogs scans the function's log group over the log window for init
// errors and timeouts: an init that times out (an EFS mount that hangs, a
// slow cold start) leaves messages in flight without any error elsewhere.
func (c *checker) recentLogs(ctx context.Context, name string) doctor.Check {
	check := "function " + name + " logs"
	group := "/aws/lambda/" + name
	end := c.opts.Now()
	start := end.Add(-c.opts.LogWindow)
	var lc logCounts
	p := cloudwatchlogs.NewFilterLogEventsPaginator(c.logs, &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName:  aws.String(group),
		StartTime:     aws.Int64(start.UnixMilli()),
		EndTime:       aws.Int64(end.UnixMilli()),
		FilterPattern: aws.String(logPattern),
	})
	truncated := false
	for pages := 0; p.HasMorePages(); pages++ {
		if pages == maxLogPages {
			truncated = true
			break
		}
		page, err := p.NextPage(ctx)
		if isNotFound(err) {
			return doctor.Check{Name: check, Status: doctor.OK,
				Detail: "no log group " + group + " (never invoked)"}
		}
		if err != nil {
			return callFailed(check, err)
		}
		for i := range page.Events {
			e := &page.Events[i]
			if lc.classify(aws.ToString(e.Message)) && (lc.newest == nil || aws.ToInt64(e.Timestamp) > aws.ToInt64(lc.newest.Timestamp)) {
				lc.newest = e
			}
		}
	}
	window := c.opts.LogWindow.String()
	data := map[string]any{"log_group": group, "window": window, "init_timeouts": lc.initTimeouts,
		"init_errors": lc.initErrors, "timeouts": lc.timeouts, "truncated": truncated}
	if lc.newest == nil {
		return doctor.Check{Name: check, Status: doctor.OK, Data: data,
			Detail: "no init errors or timeouts in the last " + window}
	}
	atLeast := ""
	if truncated {
		atLeast = "at least "
	}
	when := time.UnixMilli(aws.ToInt64(lc.newest.Timestamp)).UTC()
	msg := strings.TrimSpace(aws.ToString(lc.newest.Message))
	data["newest"] = map[string]any{"time": when, "stream": aws.ToString(lc.newest.LogStreamName), "message": msg}
	return doctor.Check{Name: check, Status: doctor.Problem, Data: data,
		Detail: fmt.Sprintf("%s%d init timeouts, %d init errors, %d invocation timeouts in the last %s; newest %s: %q (aws logs tail %s --since %s)",
			atLeast, lc.initTimeouts, lc.initErrors, lc.timeouts, window, when.Format(time.RFC3339), msg, group, logSince(c.opts.LogWindow))}
}

// logSince formats a window for `aws logs tail --since` (e.g. 1h, 90m).
func logSince(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", (d+time.Minute-1)/time.Minute)
}
