package awscheck_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tallyhq/tally/doctor"
	"github.com/tallyhq/tally/doctor/awscheck"
	"github.com/tallyhq/tally/internal/awsenv"
	"github.com/tallyhq/tally/internal/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// What moto (5.x) lacks, and how these tests make up for it:
//   - GetFunction omits FileSystemConfigs, and State is always Active with
//     no StateReason; ListEventSourceMappings never sets
//     LastProcessingResult. The proxy below adds those fields to moto's
//     answers, as AWS would send them, so the checks that read them run
//     against the rest of moto's real answer.
//   - Lambda creates no Hyperplane ENIs in moto; the fixture creates them
//     itself with Lambda's description (their interface type stays
//     "interface": EC2 lets no caller create type "lambda").
//   - FilterLogEvents ignores filter patterns it cannot parse (the OR
//     pattern the check sends), returning every event; the fixture's
//     ordinary START/REPORT lines therefore also test that the client-side
//     classification ignores them.

// deployment describes one fixture: a process function in a two-subnet
// VPC, consuming a queue, mounting EFS, with some recent log lines.
type deployment struct {
	enis       int    // Lambda ENIs created, in the first n subnets
	decoyENI   bool   // an ENI with the function's group but another owner
	mountZones int    // mount targets, in the first n subnets
	nfs        string // the mount target group's ingress: group, cidr, narrow, port22, none
	disabled   bool   // the mapping is disabled
	timeout    int32  // the function's timeout
	visibility int    // the queue's visibility timeout
	logs       []string
	noEFS      bool // the function mounts no file system
}

func healthy() deployment {
	return deployment{enis: 2, mountZones: 2, nfs: "group", timeout: 10, visibility: 6*10 + batchWindow,
		logs: []string{"START RequestId: 1 Version: $LATEST", "REPORT RequestId: 1 Duration: 12.00 ms Init Duration: 80.00 ms"}}
}

const batchWindow = 5

// world is a built fixture.
type world struct {
	prefix, fn, uuid  string
	endpoint          string // the proxy's, once started
	subnets           []string
	sgLambda, sgEFS   string
	fsID, apID, apARN string
	now               time.Time
}

func uniquePrefix(t *testing.T) string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "d" + hex.EncodeToString(b[:]) + "-"
}

func functionZip(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "#!/bin/sh\n"); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("fixture %s: %v", what, err)
		}
		return v
	}
}

// deploy builds d in moto, straight (not through the proxy).
func deploy(t *testing.T, cfg aws.Config, d deployment) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{prefix: uniquePrefix(t), now: time.Now()}
	w.fn = w.prefix + "process"
	e := ec2.NewFromConfig(cfg)

	vpc := must[*ec2.CreateVpcOutput](t, "vpc")(e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")}))
	vpcID := vpc.Vpc.VpcId
	for i, az := range []string{"us-east-1a", "us-east-1b"} {
		s := must[*ec2.CreateSubnetOutput](t, "subnet")(e.CreateSubnet(ctx, &ec2.CreateSubnetInput{
			VpcId: vpcID, CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/24", i+1)), AvailabilityZone: aws.String(az)}))
		w.subnets = append(w.subnets, aws.ToString(s.Subnet.SubnetId))
	}
	sg := func(name string) string {
		out := must[*ec2.CreateSecurityGroupOutput](t, "security group")(e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(w.prefix + name), Description: aws.String(name), VpcId: vpcID}))
		return aws.ToString(out.GroupId)
	}
	w.sgLambda, w.sgEFS = sg("lambda"), sg("efs")
	perm := ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(2049), ToPort: aws.Int32(2049)}
	switch d.nfs {
	case "group":
		perm.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: aws.String(w.sgLambda)}}
	case "cidr":
		perm.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("10.0.0.0/16")}}
	case "narrow": // covers the first subnet only
		perm.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("10.0.1.0/24")}}
	case "port22":
		perm.FromPort, perm.ToPort = aws.Int32(22), aws.Int32(22)
		perm.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: aws.String(w.sgLambda)}}
	}
	if d.nfs != "none" && d.nfs != "" {
		must[*ec2.AuthorizeSecurityGroupIngressOutput](t, "ingress")(e.AuthorizeSecurityGroupIngress(ctx,
			&ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(w.sgEFS), IpPermissions: []ec2types.IpPermission{perm}}))
	}
	for i := range d.enis {
		must[*ec2.CreateNetworkInterfaceOutput](t, "eni")(e.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
			SubnetId: aws.String(w.subnets[i]), Groups: []string{w.sgLambda},
			Description: aws.String(fmt.Sprintf("AWS Lambda VPC ENI-%s-%d", w.fn, i))}))
	}
	if d.decoyENI {
		must[*ec2.CreateNetworkInterfaceOutput](t, "decoy eni")(e.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
			SubnetId: aws.String(w.subnets[0]), Groups: []string{w.sgLambda}, Description: aws.String("bastion")}))
	}

	fs := efs.NewFromConfig(cfg)
	f := must[*efs.CreateFileSystemOutput](t, "file system")(fs.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(w.prefix)}))
	w.fsID = aws.ToString(f.FileSystemId)
	ap := must[*efs.CreateAccessPointOutput](t, "access point")(fs.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{FileSystemId: f.FileSystemId}))
	w.apID, w.apARN = aws.ToString(ap.AccessPointId), aws.ToString(ap.AccessPointArn)
	for i := range d.mountZones {
		must[*efs.CreateMountTargetOutput](t, "mount target")(fs.CreateMountTarget(ctx, &efs.CreateMountTargetInput{
			FileSystemId: f.FileSystemId, SubnetId: aws.String(w.subnets[i]), SecurityGroups: []string{w.sgEFS}}))
	}

	role := must[*iam.CreateRoleOutput](t, "role")(iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(w.prefix + "role"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}))
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(w.fn), Role: role.Role.Arn, Runtime: lambdatypes.RuntimeProvidedal2023,
		Handler: aws.String("process"), Timeout: aws.Int32(d.timeout), Code: &lambdatypes.FunctionCode{ZipFile: functionZip(t)},
		VpcConfig: &lambdatypes.VpcConfig{SubnetIds: w.subnets, SecurityGroupIds: []string{w.sgLambda}},
	}
	if !d.noEFS {
		in.FileSystemConfigs = []lambdatypes.FileSystemConfig{{Arn: aws.String(w.apARN), LocalMountPath: aws.String("/mnt/vectors")}}
	}
	must[*lambda.CreateFunctionOutput](t, "function")(lambda.NewFromConfig(cfg).CreateFunction(ctx, in))

	q := sqs.NewFromConfig(cfg)
	qu := must[*sqs.CreateQueueOutput](t, "queue")(q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(w.prefix + "ocr-results"),
		Attributes: map[string]string{"VisibilityTimeout": strconv.Itoa(d.visibility)}}))
	qa := must[*sqs.GetQueueAttributesOutput](t, "queue arn")(q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: qu.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}}))
	m := must[*lambda.CreateEventSourceMappingOutput](t, "mapping")(lambda.NewFromConfig(cfg).CreateEventSourceMapping(ctx,
		&lambda.CreateEventSourceMappingInput{FunctionName: aws.String(w.fn), EventSourceArn: aws.String(qa.Attributes["QueueArn"]),
			Enabled: aws.Bool(!d.disabled), BatchSize: aws.Int32(10), MaximumBatchingWindowInSeconds: aws.Int32(batchWindow)}))
	w.uuid = aws.ToString(m.UUID)

	logs := cloudwatchlogs.NewFromConfig(cfg)
	group := "/aws/lambda/" + w.fn
	must[*cloudwatchlogs.CreateLogGroupOutput](t, "log group")(logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}))
	must[*cloudwatchlogs.CreateLogStreamOutput](t, "log stream")(logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{
		LogGroupName: aws.String(group), LogStreamName: aws.String("2026/01/01/[$LATEST]abc")}))
	// An old timeout, outside the window, must not count.
	events := []logtypes.InputLogEvent{{Message: aws.String("2 Task timed out after 10.00 seconds"),
		Timestamp: aws.Int64(w.now.Add(-90 * time.Minute).UnixMilli())}}
	for i, msg := range d.logs {
		events = append(events, logtypes.InputLogEvent{Message: aws.String(msg),
			Timestamp: aws.Int64(w.now.Add(time.Duration(i-len(d.logs)) * time.Minute).UnixMilli())})
	}
	must[*cloudwatchlogs.PutLogEventsOutput](t, "log events")(logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{
		LogGroupName: aws.String(group), LogStreamName: aws.String("2026/01/01/[$LATEST]abc"), LogEvents: events}))
	return w
}

// proxy stands in front of moto and adds what AWS would answer and moto
// cannot: a denied call, and the fields moto leaves out.
type proxy struct {
	// deny is the IAM action to refuse, e.g. "lambda:GetFunction".
	deny string
	// code, if set, is the error deny answers instead of AccessDenied
	// (REST-JSON services only), for a call failing for another reason.
	code string
	// function and mapping are merged into GetFunction's Configuration and
	// into every mapping ListEventSourceMappings returns.
	function, mapping map[string]any
	// fileSystem is the access point ARN to report in FileSystemConfigs.
	fileSystem string
}

var credentialService = regexp.MustCompile(`Credential=[^/]+/[^/]+/[^/]+/([^/]+)/`)

// action names the IAM action of a request from its signing service and
// its protocol's way of naming the operation.
func action(r *http.Request, body []byte) string {
	m := credentialService.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return ""
	}
	service := m[1]
	op := ""
	switch target := r.Header.Get("X-Amz-Target"); {
	case target != "": // JSON protocols: Logs_20140328.FilterLogEvents, AmazonSQS.GetQueueUrl
		_, op, _ = strings.Cut(target, ".")
	case service == "ec2": // query protocol
		v, _ := url.ParseQuery(string(body))
		op = v.Get("Action")
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/2015-03-31/event-source-mappings"):
		op = "ListEventSourceMappings"
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/2015-03-31/functions/"):
		op = "GetFunction"
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/2015-02-01/access-points"):
		op = "DescribeAccessPoints"
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/security-groups"):
		op = "DescribeMountTargetSecurityGroups"
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/2015-02-01/mount-targets"):
		op = "DescribeMountTargets"
	}
	return service + ":" + op
}

// denied writes AWS's refusal in the service's protocol.
func denied(w http.ResponseWriter, act string) {
	msg := "User: arn:aws:iam::123456789012:user/doctor is not authorized to perform: " + act
	switch service, _, _ := strings.Cut(act, ":"); service {
	case "ec2":
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation. %s</Message></Error></Errors><RequestID>7f1d2a3b-0000-4000-8000-000000000000</RequestID></Response>`, msg)
	case "logs", "sqs":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": "AccessDeniedException", "message": msg})
	default: // REST-JSON: lambda, elasticfilesystem
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", "AccessDeniedException")
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]string{"Message": msg})
	}
}

// start runs the proxy in front of moto's endpoint and returns a config
// for it, recording its endpoint in w.
func (p *proxy) start(t *testing.T, endpoint string, w *world) aws.Config {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK || resp.Request.Method != http.MethodGet {
			return nil
		}
		path := resp.Request.URL.Path
		isFunction := strings.HasPrefix(path, "/2015-03-31/functions/") && !strings.Contains(strings.TrimPrefix(path, "/2015-03-31/functions/"), "/")
		isMappings := strings.HasPrefix(path, "/2015-03-31/event-source-mappings")
		if !isFunction && !isMappings {
			return nil
		}
		var doc map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			return fmt.Errorf("proxy: decode %s: %w", path, err)
		}
		resp.Body.Close()
		if conf, ok := doc["Configuration"].(map[string]any); ok && isFunction {
			if p.fileSystem != "" {
				conf["FileSystemConfigs"] = []map[string]string{{"Arn": p.fileSystem, "LocalMountPath": "/mnt/vectors"}}
			}
			for k, v := range p.function {
				conf[k] = v
			}
		}
		if ms, ok := doc["EventSourceMappings"].([]any); ok && isMappings {
			for _, m := range ms {
				for k, v := range p.mapping {
					m.(map[string]any)[k] = v
				}
			}
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if p.deny != "" && action(r, body) == p.deny {
			if p.code != "" {
				w.Header().Set("X-Amzn-Errortype", p.code)
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"Message": "injected " + p.code})
				return
			}
			denied(w, p.deny)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	w.endpoint = ts.URL
	opts := awstest.Shared(t).Options()
	opts.Endpoint = ts.URL
	cfg, err := awsenv.Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func run(t *testing.T, cfg aws.Config, w *world) []doctor.Check {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	checks := awscheck.Check(ctx, cfg, awscheck.Options{FunctionPrefix: w.prefix, Roles: []string{"process"},
		Now: func() time.Time { return w.now }})
	for _, c := range checks {
		t.Logf("%-7s %s: %s | fix: %s", c.Status, c.Name, c.Detail, c.Fix)
	}
	return checks
}

// find returns the one check whose name ends with suffix.
func find(t *testing.T, checks []doctor.Check, suffix string) doctor.Check {
	t.Helper()
	var got []doctor.Check
	for _, c := range checks {
		if strings.HasSuffix(c.Name, suffix) {
			got = append(got, c)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want one check named *%s, got %d", suffix, len(got))
	}
	return got[0]
}

func TestHealthy(t *testing.T) {
	t.Parallel()
	srv := awstest.Shared(t)
	for _, nfs := range []string{"group", "cidr"} {
		t.Run(nfs, func(t *testing.T) {
			t.Parallel()
			d := healthy()
			d.nfs = nfs
			d.decoyENI = true
			w := deploy(t, srv.Config(t), d)
			p := &proxy{fileSystem: w.apARN, mapping: map[string]any{"LastProcessingResult": "OK"}}
			checks := run(t, p.start(t, srv.Endpoint, w), w)
			want := []string{
				"function " + w.fn,
				"function " + w.fn + " network",
				"function " + w.fn + " efs " + w.fsID + " mount targets",
				"function " + w.fn + " efs " + w.fsID + " nfs",
				fmt.Sprintf("mapping %s (%s from %socr-results)", w.uuid, w.fn, w.prefix),
				"queue " + w.prefix + "ocr-results visibility",
				"function " + w.fn + " logs",
			}
			var names []string
			for _, c := range checks {
				names = append(names, c.Name)
				if c.Status != doctor.OK {
					t.Errorf("%s: %s (%s), want ok", c.Name, c.Status, c.Detail)
				}
			}
			if strings.Join(names, "\n") != strings.Join(want, "\n") {
				t.Errorf("checks:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
			}
			if net := find(t, checks, " network"); len(net.Data["enis"].([]string)) != 2 {
				t.Errorf("network data %v: want the 2 Lambda ENIs, not the decoy", net.Data)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	t.Parallel()
	srv := awstest.Shared(t)
	tests := []struct {
		name   string
		change func(*deployment)
		proxy  func(*proxy, *world)
		check  string // suffix of the check's name
		status doctor.Status
		detail string // in the detail
		fix    func(*world) string
		// alsoUnknown is the suffix of a check that cannot run either,
		// because it needs what the denied call would have returned.
		alsoUnknown string
	}{
		{
			name:   "mapping disabled",
			change: func(d *deployment) { d.disabled = true },
			check:  "ocr-results)", status: doctor.Problem, detail: "state Disabled",
			fix: func(w *world) string { return "aws lambda update-event-source-mapping --uuid " + w.uuid + " --enabled" },
		},
		{
			name: "mapping last processing failed",
			proxy: func(p *proxy, _ *world) {
				p.mapping = map[string]any{"LastProcessingResult": "PROBLEM: Function call failed"}
			},
			check: "ocr-results)", status: doctor.Problem, detail: "PROBLEM: Function call failed",
			fix: func(*world) string { return "" },
		},
		{
			name:   "no ENI",
			change: func(d *deployment) { d.enis = 0; d.decoyENI = true },
			check:  " network", status: doctor.Problem, detail: "no Lambda ENI exists",
			fix: func(w *world) string {
				return fmt.Sprintf("aws lambda update-function-configuration --function-name %s --vpc-config SubnetIds=%s,%s,SecurityGroupIds=%s",
					w.fn, w.subnets[0], w.subnets[1], w.sgLambda)
			},
		},
		{
			name:   "ENI in one subnet only",
			change: func(d *deployment) { d.enis = 1 },
			check:  " network", status: doctor.Problem, detail: "no Lambda ENI in subnets",
			fix: func(w *world) string { return "aws lambda update-function-configuration --function-name " + w.fn },
		},
		{
			name:   "mount target missing in a function zone",
			change: func(d *deployment) { d.mountZones = 1 },
			check:  " mount targets", status: doctor.Problem, detail: "no mount target in zone us-east-1b",
			fix: func(w *world) string {
				return fmt.Sprintf("aws efs create-mount-target --file-system-id %s --subnet-id %s --security-groups %s", w.fsID, w.subnets[1], w.sgEFS)
			},
		},
		{
			name:   "no mount target at all",
			change: func(d *deployment) { d.mountZones = 0 },
			check:  " mount targets", status: doctor.Problem, detail: "no mount target in zone us-east-1a,us-east-1b",
			fix: func(w *world) string {
				return fmt.Sprintf("aws efs create-mount-target --file-system-id %s --subnet-id %s\naws efs create-mount-target --file-system-id %s --subnet-id %s",
					w.fsID, w.subnets[0], w.fsID, w.subnets[1])
			},
		},
		{
			name:   "mount target group admits nothing",
			change: func(d *deployment) { d.nfs = "none" },
			check:  " nfs", status: doctor.Problem, detail: "admits TCP 2049",
			fix: func(w *world) string {
				return fmt.Sprintf("aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port 2049 --source-group %s", w.sgEFS, w.sgLambda)
			},
		},
		{
			name:   "mount target group admits another port",
			change: func(d *deployment) { d.nfs = "port22" },
			check:  " nfs", status: doctor.Problem, detail: "admits TCP 2049",
			fix: func(w *world) string { return "aws ec2 authorize-security-group-ingress --group-id " + w.sgEFS },
		},
		{
			name:   "mount target CIDR misses a function subnet",
			change: func(d *deployment) { d.nfs = "narrow" },
			check:  " nfs", status: doctor.Problem, detail: "admits TCP 2049",
			fix: func(w *world) string { return "--port 2049 --source-group " + w.sgLambda },
		},
		{
			name:   "visibility timeout too short",
			change: func(d *deployment) { d.visibility = 6*10 + batchWindow - 1 },
			check:  "ocr-results visibility", status: doctor.Problem, detail: "VisibilityTimeout 64s is below",
			fix: func(w *world) string {
				// moto names the queue URL after the host asked: the proxy.
				return "aws sqs set-queue-attributes --queue-url " + w.endpoint + "/123456789012/" + w.prefix +
					"ocr-results --attributes VisibilityTimeout=65"
			},
		},
		{
			name: "init timeout in logs",
			change: func(d *deployment) {
				d.logs = append(d.logs,
					"INIT_REPORT Init Duration: 10000.12 ms Phase: init Status: timeout",
					"INIT_REPORT Init Duration: 9.50 ms Phase: init Status: error Error Type: Runtime.ExitError",
					"INIT_REPORT Init Duration: 10000.03 ms Phase: invoke Status: timeout",
					"2f0c Task timed out after 10.02 seconds")
			},
			check: " logs", status: doctor.Problem,
			detail: `2 init timeouts, 1 init errors, 1 invocation timeouts in the last 1h0m0s; newest`,
			fix:    func(*world) string { return "" },
		},
		{
			name: "function failed",
			proxy: func(p *proxy, _ *world) {
				p.function = map[string]any{"State": "Failed", "StateReasonCode": "SubnetOutOfIPAddresses", "StateReason": "no free IPs"}
			},
			check: "process", status: doctor.Problem, detail: "state Failed (SubnetOutOfIPAddresses: no free IPs)",
			fix: func(*world) string { return "" },
		},
		{
			name:  "function pending",
			proxy: func(p *proxy, _ *world) { p.function = map[string]any{"State": "Pending"} },
			check: "process", status: doctor.Problem, detail: "state Pending",
			fix: func(w *world) string { return "aws lambda wait function-active-v2 --function-name " + w.fn },
		},
		{
			name: "last update failed",
			proxy: func(p *proxy, _ *world) {
				p.function = map[string]any{"LastUpdateStatus": "Failed", "LastUpdateStatusReason": "EFS mount failure"}
			},
			check: "process", status: doctor.Problem, detail: "last update Failed (EFS mount failure)",
			fix: func(*world) string { return "" },
		},
		{
			name:  "access point gone",
			proxy: func(p *proxy, w *world) { p.fileSystem = strings.Replace(w.apARN, w.apID, "fsap-0000000000000000f", 1) },
			check: " efs fsap-0000000000000000f", status: doctor.Problem, detail: "does not exist",
			fix: func(*world) string { return "cd infra && pulumi up" },
		},
		{
			name:  "denied lambda:GetFunction",
			proxy: func(p *proxy, _ *world) { p.deny = "lambda:GetFunction" },
			check: "process", status: doctor.Unknown, detail: "missing IAM permission lambda:GetFunction",
			fix: func(*world) string { return "" }, alsoUnknown: "ocr-results visibility",
		},
		{
			name:  "GetFunction fails otherwise",
			proxy: func(p *proxy, _ *world) { p.deny, p.code = "lambda:GetFunction", "InvalidParameterValueException" },
			check: "process", status: doctor.Unknown, detail: "InvalidParameterValueException: injected",
			fix: func(*world) string { return "" }, alsoUnknown: "ocr-results visibility",
		},
		{
			name:  "denied lambda:ListEventSourceMappings",
			proxy: func(p *proxy, _ *world) { p.deny = "lambda:ListEventSourceMappings" },
			check: " mappings", status: doctor.Unknown, detail: "missing IAM permission lambda:ListEventSourceMappings",
			fix: func(*world) string { return "" },
		},
		{
			name:  "denied ec2:DescribeNetworkInterfaces",
			proxy: func(p *proxy, _ *world) { p.deny = "ec2:DescribeNetworkInterfaces" },
			check: " network", status: doctor.Unknown, detail: "missing IAM permission ec2:DescribeNetworkInterfaces (UnauthorizedOperation",
			fix: func(*world) string { return "" },
		},
		{
			name:  "denied ec2:DescribeSecurityGroups",
			proxy: func(p *proxy, _ *world) { p.deny = "ec2:DescribeSecurityGroups" },
			check: " nfs", status: doctor.Unknown, detail: "missing IAM permission ec2:DescribeSecurityGroups",
			fix: func(*world) string { return "" },
		},
		{
			name:  "denied elasticfilesystem:DescribeMountTargets",
			proxy: func(p *proxy, _ *world) { p.deny = "elasticfilesystem:DescribeMountTargets" },
			check: " mount targets", status: doctor.Unknown, detail: "missing IAM permission elasticfilesystem:DescribeMountTargets",
			fix: func(*world) string { return "" },
		},
		{
			name:  "denied logs:FilterLogEvents",
			proxy: func(p *proxy, _ *world) { p.deny = "logs:FilterLogEvents" },
			check: " logs", status: doctor.Unknown, detail: "missing IAM permission logs:FilterLogEvents (AccessDeniedException",
			fix: func(*world) string { return "" },
		},
		{
			name:  "denied sqs:GetQueueAttributes",
			proxy: func(p *proxy, _ *world) { p.deny = "sqs:GetQueueAttributes" },
			check: "ocr-results visibility", status: doctor.Unknown, detail: "missing IAM permission sqs:GetQueueAttributes",
			fix: func(*world) string { return "" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := healthy()
			if tt.change != nil {
				tt.change(&d)
			}
			w := deploy(t, srv.Config(t), d)
			p := &proxy{fileSystem: w.apARN}
			if tt.proxy != nil {
				tt.proxy(p, w)
			}
			checks := run(t, p.start(t, srv.Endpoint, w), w)
			c := find(t, checks, tt.check)
			if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("%s: %s %q, want %s containing %q", c.Name, c.Status, c.Detail, tt.status, tt.detail)
			}
			if want := tt.fix(w); want == "" && c.Fix != "" || !strings.Contains(c.Fix, want) {
				t.Errorf("%s fix %q, want %q", c.Name, c.Fix, want)
			}
			// Only the broken thing is reported.
			for _, o := range checks {
				if tt.alsoUnknown != "" && strings.HasSuffix(o.Name, tt.alsoUnknown) && o.Status == doctor.Unknown {
					continue
				}
				if o.Name != c.Name && o.Status != doctor.OK {
					t.Errorf("%s: %s (%s), want ok: only %s is broken", o.Name, o.Status, o.Detail, c.Name)
				}
			}
		})
	}
}

func TestNotDeployed(t *testing.T) {
	t.Parallel()
	srv := awstest.Shared(t)
	prefix := uniquePrefix(t)
	checks := awscheck.Check(context.Background(), srv.Config(t), awscheck.Options{FunctionPrefix: prefix})
	if len(checks) != 3 {
		t.Fatalf("got %d checks, want one per default role: %+v", len(checks), checks)
	}
	for i, role := range awscheck.DefaultRoles {
		c := checks[i]
		if c.Name != "function "+prefix+role || c.Status != doctor.Problem || !strings.Contains(c.Detail, "not deployed") || c.Fix != "cd infra && pulumi up" {
			t.Errorf("check %d = %+v, want %s not deployed", i, c, prefix+role)
		}
	}
}

// A function outside any VPC, never invoked (no log group), with no
// mappings and no file system, is healthy.
func TestPlainFunction(t *testing.T) {
	t.Parallel()
	srv := awstest.Shared(t)
	cfg := srv.Config(t)
	ctx := context.Background()
	prefix := uniquePrefix(t)
	role := must[*iam.CreateRoleOutput](t, "role")(iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String(prefix + "role"), AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[]}`)}))
	must[*lambda.CreateFunctionOutput](t, "function")(lambda.NewFromConfig(cfg).CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(prefix + "upload"), Role: role.Role.Arn, Runtime: lambdatypes.RuntimeProvidedal2023,
		Handler: aws.String("upload"), Code: &lambdatypes.FunctionCode{ZipFile: functionZip(t)}}))
	checks := awscheck.Check(ctx, cfg, awscheck.Options{FunctionPrefix: prefix, Roles: []string{"upload"}})
	if len(checks) != 3 {
		t.Fatalf("got %d checks, want function, network, logs: %+v", len(checks), checks)
	}
	for _, c := range checks {
		if c.Status != doctor.OK {
			t.Errorf("%s: %s (%s), want ok", c.Name, c.Status, c.Detail)
		}
	}
	if c := find(t, checks, " logs"); !strings.Contains(c.Detail, "never invoked") {
		t.Errorf("logs: %q, want never invoked", c.Detail)
	}
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	got := awscheck.Permissions()
	for _, p := range []string{"lambda:GetFunction", "ec2:DescribeNetworkInterfaces", "elasticfilesystem:DescribeMountTargetSecurityGroups", "logs:FilterLogEvents", "sqs:GetQueueAttributes"} {
		if !strings.Contains(strings.Join(got, " "), p) {
			t.Errorf("Permissions() = %v, missing %s", got, p)
		}
	}
}
