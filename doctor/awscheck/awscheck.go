// Package awscheck checks the deployment itself for `tally doctor`: the
// Lambda functions, their event source mappings and ENIs, their EFS mount
// targets, the source queues' visibility timeouts and recent init errors
// and timeouts in CloudWatch Logs. It automates the old system's manual
// networking checklist ("does the ENI exist, is the mapping enabled, are
// there init timeouts, is there a mount target in the function's subnet,
// does the security group admit NFS"), and every call it makes is
// read-only, so it is safe to run against production.
package awscheck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/tallyhq/tally/doctor"
)

// DefaultRoles are the functions a deployment has (infra/program.Roles);
// infra is its own module, so the list is repeated here.
var DefaultRoles = []string{"process", "compact", "upload"}

// DefaultLogWindow is how far back the log check looks when Options say
// nothing: long enough to see the last cold starts, short enough that an
// old, fixed incident does not keep the report red.
const DefaultLogWindow = time.Hour

// VisibilityFactor is AWS's rule for a queue a function consumes: its
// visibility timeout must be at least this many times the function's
// timeout (plus the batching window), or a batch reappears on the queue
// while the function is still working on it or is being retried after a
// throttle.
const VisibilityFactor = 6

// maxLogPages bounds the log scan, so that a function logging thousands of
// timeouts an hour still gets a prompt answer (the counts then say "at
// least").
const maxLogPages = 20

// Options name the deployment to check.
type Options struct {
	// FunctionPrefix is the functions' name prefix: each function is
	// FunctionPrefix+role, e.g. "tally-dev-" + "process".
	FunctionPrefix string
	// Roles are the functions to check; empty means DefaultRoles.
	Roles []string
	// LogWindow is how far back to look for init errors and timeouts;
	// zero means DefaultLogWindow.
	LogWindow time.Duration
	// Now is the clock the log window ends at; nil means time.Now.
	Now func() time.Time
}

// Check runs every deployment check and returns the findings, the
// functions in Roles order and each function's checks in a fixed order,
// so that two runs of a healthy deployment print the same report. It never
// fails as a whole: a call that cannot be made becomes an Unknown check
// naming the missing permission or the error.
func Check(ctx context.Context, cfg aws.Config, opts Options) []doctor.Check {
	if len(opts.Roles) == 0 {
		opts.Roles = DefaultRoles
	}
	if opts.LogWindow <= 0 {
		opts.LogWindow = DefaultLogWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &checker{
		lambda: lambda.NewFromConfig(cfg),
		ec2:    ec2.NewFromConfig(cfg),
		efs:    efs.NewFromConfig(cfg),
		logs:   cloudwatchlogs.NewFromConfig(cfg),
		sqs:    sqs.NewFromConfig(cfg),
		opts:   opts,
	}
	// Functions are independent; checking them at once keeps the doctor
	// about as fast as one function's calls.
	results := make([][]doctor.Check, len(opts.Roles))
	var wg sync.WaitGroup
	for i, role := range opts.Roles {
		wg.Go(func() { results[i] = c.function(ctx, opts.FunctionPrefix+role) })
	}
	wg.Wait()
	return slices.Concat(results...)
}

type checker struct {
	lambda *lambda.Client
	ec2    *ec2.Client
	efs    *efs.Client
	logs   *cloudwatchlogs.Client
	sqs    *sqs.Client
	opts   Options
}

// function runs one function's checks.
func (c *checker) function(ctx context.Context, name string) []doctor.Check {
	var out []doctor.Check
	check := "function " + name
	got, err := c.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	var fn *lambdatypes.FunctionConfiguration
	switch {
	case isNotFound(err):
		// Nothing else about it can be checked, and every other finding
		// would only repeat this one.
		return []doctor.Check{{
			Name: check, Status: doctor.Problem,
			Detail: "not deployed: no such function in this account and region",
			Fix:    "cd infra && pulumi up",
		}}
	case err != nil:
		out = append(out, callFailed(check, err))
	case got.Configuration == nil:
		out = append(out, doctor.Check{Name: check, Status: doctor.Unknown, Detail: "GetFunction returned no configuration"})
	default:
		fn = got.Configuration
		out = append(out, stateCheck(check, fn))
		out = append(out, c.network(ctx, check, fn))
		out = append(out, c.fileSystems(ctx, check, fn)...)
	}
	out = append(out, c.mappings(ctx, name, fn)...)
	out = append(out, c.recentLogs(ctx, name))
	return out
}

// stateCheck reads the function's lifecycle: a function that is not
// Active, or whose last update did not succeed, runs old code or none.
func stateCheck(check string, fn *lambdatypes.FunctionConfiguration) doctor.Check {
	name := aws.ToString(fn.FunctionName)
	c := doctor.Check{Name: check, Data: map[string]any{
		"state":              string(fn.State),
		"last_update_status": string(fn.LastUpdateStatus),
		"timeout_s":          aws.ToInt32(fn.Timeout),
	}}
	var problems []string
	switch fn.State {
	case lambdatypes.StateActive, "":
		// moto and old API versions leave State empty; nothing is known
		// against it.
	case lambdatypes.StatePending:
		problems = append(problems, "state Pending (Lambda is still creating its ENIs)")
		c.Fix = "aws lambda wait function-active-v2 --function-name " + name
	case lambdatypes.StateInactive:
		problems = append(problems, "state Inactive"+reason(fn.StateReasonCode, fn.StateReason)+
			" (idle functions lose their ENIs; the next invoke or update reactivates it)")
	default:
		problems = append(problems, "state "+string(fn.State)+reason(fn.StateReasonCode, fn.StateReason))
	}
	switch fn.LastUpdateStatus {
	case lambdatypes.LastUpdateStatusSuccessful, "":
	case lambdatypes.LastUpdateStatusInProgress:
		problems = append(problems, "last update InProgress")
		if c.Fix == "" {
			c.Fix = "aws lambda wait function-updated-v2 --function-name " + name
		}
	default:
		problems = append(problems, "last update "+string(fn.LastUpdateStatus)+
			reason(fn.LastUpdateStatusReasonCode, fn.LastUpdateStatusReason))
	}
	if len(problems) > 0 {
		c.Status = doctor.Problem
		c.Detail = strings.Join(problems, "; ")
		return c
	}
	c.Status = doctor.OK
	c.Detail = fmt.Sprintf("Active, last update Successful, timeout %ds", aws.ToInt32(fn.Timeout))
	return c
}

func reason[C ~string](code C, text *string) string {
	var parts []string
	if code != "" {
		parts = append(parts, string(code))
	}
	if t := aws.ToString(text); t != "" {
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ": ") + ")"
}

// mappings checks each event source mapping of the function and, for an
// SQS source, the queue's visibility timeout against the function's
// timeout (fn nil: the timeout is unknown).
func (c *checker) mappings(ctx context.Context, name string, fn *lambdatypes.FunctionConfiguration) []doctor.Check {
	var out []doctor.Check
	p := lambda.NewListEventSourceMappingsPaginator(c.lambda, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return append(out, callFailed("function "+name+" mappings", err))
		}
		for _, m := range page.EventSourceMappings {
			out = append(out, mappingCheck(name, m))
			if src, err := arn.Parse(aws.ToString(m.EventSourceArn)); err == nil && src.Service == "sqs" {
				out = append(out, c.visibility(ctx, name, fn, src, m))
			}
		}
	}
	return out
}

// mappingCheck reads a mapping's state and last result: a disabled mapping
// is the classic "messages pile up and nothing runs".
func mappingCheck(fnName string, m lambdatypes.EventSourceMappingConfiguration) doctor.Check {
	uuid := aws.ToString(m.UUID)
	state := aws.ToString(m.State)
	last := aws.ToString(m.LastProcessingResult)
	c := doctor.Check{
		Name: fmt.Sprintf("mapping %s (%s from %s)", uuid, fnName, sourceName(aws.ToString(m.EventSourceArn))),
		Data: map[string]any{"uuid": uuid, "state": state, "last_processing_result": last,
			"event_source_arn": aws.ToString(m.EventSourceArn)},
	}
	var problems []string
	if state != "Enabled" {
		problems = append(problems, "state "+state+reason("", m.StateTransitionReason))
		if state == "Disabled" || state == "Disabling" {
			c.Fix = "aws lambda update-event-source-mapping --uuid " + uuid + " --enabled"
		}
	}
	if lastFailed(last) {
		problems = append(problems, "last processing result: "+last)
	}
	if len(problems) > 0 {
		c.Status = doctor.Problem
		c.Detail = strings.Join(problems, "; ")
		return c
	}
	c.Status = doctor.OK
	c.Detail = "Enabled"
	if last != "" {
		c.Detail += ", last processing result: " + last
	}
	return c
}

// lastFailed reports whether a LastProcessingResult is a failure: Lambda
// writes "OK", "No records processed", or "PROBLEM: <what>".
func lastFailed(last string) bool {
	l := strings.ToLower(last)
	return strings.HasPrefix(l, "problem") || strings.Contains(l, "fail")
}

func sourceName(a string) string {
	if p, err := arn.Parse(a); err == nil {
		return p.Resource
	}
	return a
}

// visibility compares the source queue's visibility timeout with what the
// function needs.
func (c *checker) visibility(ctx context.Context, fnName string, fn *lambdatypes.FunctionConfiguration, src arn.ARN, m lambdatypes.EventSourceMappingConfiguration) doctor.Check {
	check := "queue " + src.Resource + " visibility"
	if fn == nil {
		return doctor.Check{Name: check, Status: doctor.Unknown,
			Detail: "needs function " + fnName + "'s timeout, which could not be read"}
	}
	url, err := c.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{
		QueueName: aws.String(src.Resource), QueueOwnerAWSAccountId: aws.String(src.AccountID)})
	if err != nil {
		if isNotFound(err) {
			return doctor.Check{Name: check, Status: doctor.Problem,
				Detail: "the mapping's source queue does not exist", Fix: "cd infra && pulumi up"}
		}
		return callFailed(check, err)
	}
	attrs, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: url.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameVisibilityTimeout}})
	if err != nil {
		return callFailed(check, err)
	}
	raw := attrs.Attributes[string(sqstypes.QueueAttributeNameVisibilityTimeout)]
	have, err := strconv.Atoi(raw)
	if err != nil {
		return doctor.Check{Name: check, Status: doctor.Unknown,
			Detail: fmt.Sprintf("VisibilityTimeout %q is not a number", raw)}
	}
	timeout := int(aws.ToInt32(fn.Timeout))
	window := int(aws.ToInt32(m.MaximumBatchingWindowInSeconds))
	need := VisibilityFactor*timeout + window
	data := map[string]any{"queue_url": aws.ToString(url.QueueUrl), "visibility_timeout_s": have,
		"function_timeout_s": timeout, "batching_window_s": window, "required_s": need}
	if have < need {
		return doctor.Check{Name: check, Status: doctor.Problem, Data: data,
			Detail: fmt.Sprintf("VisibilityTimeout %ds is below %d× %s's timeout %ds + batching window %ds = %ds: batches reappear while still in flight",
				have, VisibilityFactor, fnName, timeout, window, need),
			Fix: fmt.Sprintf("aws sqs set-queue-attributes --queue-url %s --attributes VisibilityTimeout=%d", aws.ToString(url.QueueUrl), need)}
	}
	return doctor.Check{Name: check, Status: doctor.OK, Data: data,
		Detail: fmt.Sprintf("VisibilityTimeout %ds ≥ %ds (%d× %s's timeout %ds + window %ds)",
			have, need, VisibilityFactor, fnName, timeout, window)}
}

// Error codes AWS services answer when the caller lacks a permission, in
// their various protocols.
var deniedCodes = []string{"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}

// permissions maps each call the checks make ("<SDK service ID>.<operation>")
// to the IAM action it needs, so that a denied call names exactly what to
// grant.
var permissions = map[string]string{
	"Lambda.GetFunction":                    "lambda:GetFunction",
	"Lambda.ListEventSourceMappings":        "lambda:ListEventSourceMappings",
	"EC2.DescribeNetworkInterfaces":         "ec2:DescribeNetworkInterfaces",
	"EC2.DescribeSubnets":                   "ec2:DescribeSubnets",
	"EC2.DescribeSecurityGroups":            "ec2:DescribeSecurityGroups",
	"EFS.DescribeAccessPoints":              "elasticfilesystem:DescribeAccessPoints",
	"EFS.DescribeMountTargets":              "elasticfilesystem:DescribeMountTargets",
	"EFS.DescribeMountTargetSecurityGroups": "elasticfilesystem:DescribeMountTargetSecurityGroups",
	"CloudWatch Logs.FilterLogEvents":       "logs:FilterLogEvents",
	"SQS.GetQueueUrl":                       "sqs:GetQueueUrl",
	"SQS.GetQueueAttributes":                "sqs:GetQueueAttributes",
}

// Permissions lists, sorted, every IAM action Check uses: the read-only
// policy whoever runs `tally doctor` needs.
func Permissions() []string {
	out := make([]string, 0, len(permissions))
	for _, p := range permissions {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// permissionFor names the IAM action behind a failed call, from the table
// or, for a call missing from it, from the service and operation.
func permissionFor(err error) string {
	var oe *smithy.OperationError
	if !errors.As(err, &oe) {
		return ""
	}
	if p, ok := permissions[oe.ServiceID+"."+oe.OperationName]; ok {
		return p
	}
	return strings.ToLower(strings.ReplaceAll(oe.ServiceID, " ", "")) + ":" + oe.OperationName
}

// callFailed turns a failed call into an Unknown check: the check could
// not run, so nothing is known either way. A denied call names the
// permission to grant.
func callFailed(check string, err error) doctor.Check {
	var ae smithy.APIError
	if errors.As(err, &ae) && slices.Contains(deniedCodes, ae.ErrorCode()) {
		perm := permissionFor(err)
		return doctor.Check{Name: check, Status: doctor.Unknown,
			Detail: fmt.Sprintf("not permitted: missing IAM permission %s (%s: %s)", perm, ae.ErrorCode(), ae.ErrorMessage()),
			Data:   map[string]any{"missing_permission": perm, "error_code": ae.ErrorCode()}}
	}
	return doctor.Check{Name: check, Status: doctor.Unknown, Detail: err.Error()}
}

// isNotFound reports whether the call failed because its resource does not
// exist (Lambda, Logs: ResourceNotFoundException; SQS: QueueDoesNotExist).
func isNotFound(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ResourceNotFoundException", "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue":
		return true
	}
	return false
}
