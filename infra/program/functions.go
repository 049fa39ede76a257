package program

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/apigatewayv2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lambda"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// VPCAccessPolicy is the AWS managed policy a function in a VPC needs for
// its ENIs and its logs (the only grants that cannot name a resource).
const VPCAccessPolicy = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"

// Routes are the upload API's routes (the upload role's mux, cmd/tally).
var Routes = []string{
	"POST /upload-receipt",
	"POST /receipts",
	"GET /upload-status",
	"POST /ocr-results",
	"GET /search",
	"GET /images/{id}",
	"GET /healthz",
}

// Actions granted per kind of access; one list each so that the policy
// and the tests agree.
var (
	sqsConsume = []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
	sqsSend    = []string{"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
	sqsStats   = []string{"sqs:GetQueueAttributes"}
	s3Read     = []string{"s3:GetObject"}
	s3Write    = []string{"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
	s3Delete   = []string{"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"}
	tableRW    = []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
		"dynamodb:ConditionCheckItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:TransactWriteItems",
		"dynamodb:Query", "dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive"}
	efsClient = []string{"elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"}
)

// grant is one kind of access to one named resource (a queue name or a
// bucket role).
type grant struct {
	name    string
	actions []string
}

// access is what one function may touch besides the table, which all
// three use.
type access struct {
	queues, buckets []grant
}

// accessOf lists, per role, the queues and buckets a function uses.
func accessOf(role string) access {
	switch role {
	case RoleProcess:
		return access{
			queues: []grant{
				{QueueOCRResults, sqsConsume},
				{QueueOCRResults + DLQSuffix, sqsSend}, // bad input goes there with its reason
				{QueueCompaction, sqsSend},
			},
			buckets: []grant{{BucketRaw, s3Write}, {BucketAssets, s3Write}, {BucketVectors, s3Write}},
		}
	case RoleCompact:
		return access{
			// send: the rescuer re-queues stuck runs.
			queues: []grant{{QueueCompaction, append(append([]string{}, sqsConsume...), "sqs:SendMessage")}},
			// delete: compaction removes merged deltas itself (its GC).
			buckets: []grant{{BucketVectors, s3Delete}},
		}
	default: // upload
		return access{
			queues: []grant{
				{QueueOCRJobs, sqsSend},
				{QueueOCRResults, sqsSend},  // external OCR results
				{QueueCompaction, sqsStats}, // GET /healthz reports every queue's depth
			},
			// Presigned PUT/GET of uploads; search reads segments.
			buckets: []grant{{BucketRaw, s3Write}, {BucketVectors, s3Read}},
		}
	}
}

type functions struct {
	fns map[string]*lambda.Function
	api *apigatewayv2.Api
}

func newFunctions(ctx *pulumi.Context, c *Config, n *network, st *storage) (*functions, error) {
	out := &functions{fns: map[string]*lambda.Function{}}
	// Secrets stay Outputs end to end: encrypted in state, redacted in graphs.
	openai := config.GetSecret(ctx, Namespace+":openaiApiKey")
	places := config.GetSecret(ctx, Namespace+":googlePlacesApiKey")
	_, hasOpenAI := ctx.GetConfig(Namespace + ":openaiApiKey")
	_, hasPlaces := ctx.GetConfig(Namespace + ":googlePlacesApiKey")

	for _, role := range Roles {
		fc := c.Functions[role]
		lr, err := newRole(ctx, c, st, role)
		if err != nil {
			return nil, fmt.Errorf("%s role: %w", role, err)
		}
		env := st.env(c)
		env["TALLY_ROLE"] = pulumi.String(role)
		env["TALLY_VECTOR_MODE"] = pulumi.String(c.VectorMode(role))
		if hasOpenAI {
			env["OPENAI_API_KEY"] = openai
		}
		if hasPlaces {
			env["GOOGLE_PLACES_API_KEY"] = places
		}
		var subnets pulumi.StringArray
		for _, s := range fc.Subnets {
			subnets = append(subnets, n.subnets[s].ID())
		}
		args := &lambda.FunctionArgs{
			Name:             pulumi.String(c.NamePrefix + role),
			Code:             pulumi.NewFileArchive(c.Artifact(role)),
			Runtime:          pulumi.String("provided.al2023"),
			Architectures:    pulumi.StringArray{pulumi.String("arm64")},
			Handler:          pulumi.String(role),
			Role:             lr.Arn,
			Timeout:          pulumi.Int(fc.Timeout),
			MemorySize:       pulumi.Int(fc.Memory),
			EphemeralStorage: lambda.FunctionEphemeralStorageArgs{Size: pulumi.Int(fc.EphemeralStorage)},
			VpcConfig: lambda.FunctionVpcConfigArgs{
				SubnetIds:        subnets,
				SecurityGroupIds: pulumi.StringArray{n.sgLambda.ID()},
			},
			Tags: tags(c, role),
		}
		// The role's policies must exist before the function is created,
		// or its first ENI and log calls fail.
		deps := []pulumi.Resource{lr.vpcAccess, lr.policy}
		if c.UsesEFS(role) {
			env["TALLY_VECTOR_MOUNT"] = pulumi.String(EFSMount)
			args.FileSystemConfig = lambda.FunctionFileSystemConfigArgs{Arn: st.ap.Arn, LocalMountPath: pulumi.String(EFSMount)}
			// A function mounting EFS before its zone's mount target is
			// available fails to create.
			deps = append(deps, st.mounts...)
		}
		args.Environment = lambda.FunctionEnvironmentArgs{Variables: env}
		fn, err := lambda.NewFunction(ctx, "fn-"+role, args, pulumi.DependsOn(deps))
		if err != nil {
			return nil, fmt.Errorf("%s function: %w", role, err)
		}
		out.fns[role] = fn
	}

	if _, err := lambda.NewEventSourceMapping(ctx, "esm-process", &lambda.EventSourceMappingArgs{
		EventSourceArn:                 st.queues[QueueOCRResults].Arn,
		FunctionName:                   out.fns[RoleProcess].Arn,
		BatchSize:                      pulumi.Int(c.ProcessBatchSize),
		MaximumBatchingWindowInSeconds: pulumi.Int(c.ProcessBatchWindow),
		FunctionResponseTypes:          pulumi.StringArray{pulumi.String("ReportBatchItemFailures")},
		Enabled:                        pulumi.Bool(true),
	}); err != nil {
		return nil, fmt.Errorf("process event source mapping: %w", err)
	}
	if _, err := lambda.NewEventSourceMapping(ctx, "esm-compact", &lambda.EventSourceMappingArgs{
		EventSourceArn:                 st.queues[QueueCompaction].Arn,
		FunctionName:                   out.fns[RoleCompact].Arn,
		BatchSize:                      pulumi.Int(c.CompactBatchSize),
		MaximumBatchingWindowInSeconds: pulumi.Int(c.CompactBatchWindow),
		FunctionResponseTypes:          pulumi.StringArray{pulumi.String("ReportBatchItemFailures")},
		ScalingConfig:                  lambda.EventSourceMappingScalingConfigArgs{MaximumConcurrency: pulumi.Int(c.CompactMaxConcurrency)},
		Enabled:                        pulumi.Bool(true),
	}); err != nil {
		return nil, fmt.Errorf("compact event source mapping: %w", err)
	}

	api, err := newAPI(ctx, c, out.fns[RoleUpload])
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	out.api = api
	return out, nil
}

func newAPI(ctx *pulumi.Context, c *Config, fn *lambda.Function) (*apigatewayv2.Api, error) {
	api, err := apigatewayv2.NewApi(ctx, "api", &apigatewayv2.ApiArgs{
		Name:         pulumi.String(c.NamePrefix + "api"),
		ProtocolType: pulumi.String("HTTP"),
		Tags:         tags(c, "api"),
	})
	if err != nil {
		return nil, err
	}
	integ, err := apigatewayv2.NewIntegration(ctx, "api-upload", &apigatewayv2.IntegrationArgs{
		ApiId:                api.ID(),
		IntegrationType:      pulumi.String("AWS_PROXY"),
		IntegrationMethod:    pulumi.String("POST"),
		IntegrationUri:       fn.InvokeArn,
		PayloadFormatVersion: pulumi.String("2.0"),
	})
	if err != nil {
		return nil, fmt.Errorf("integration: %w", err)
	}
	for _, key := range Routes {
		if _, err := apigatewayv2.NewRoute(ctx, "route-"+routeName(key), &apigatewayv2.RouteArgs{
			ApiId:    api.ID(),
			RouteKey: pulumi.String(key),
			Target:   pulumi.Sprintf("integrations/%s", integ.ID()),
			// No API Gateway authorizer: the upload function checks the
			// caller's Bearer token (or session) against the accounts in
			// the DynamoDB table, the same ones `tally serve` uses, and
			// refuses everything but /healthz until an account exists.
			AuthorizationType: pulumi.String("NONE"),
		}); err != nil {
			return nil, fmt.Errorf("route %s: %w", key, err)
		}
	}
	if _, err := apigatewayv2.NewStage(ctx, "api-default", &apigatewayv2.StageArgs{
		ApiId:      api.ID(),
		Name:       pulumi.String("$default"),
		AutoDeploy: pulumi.Bool(true),
		Tags:       tags(c, "api"),
	}); err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	if _, err := lambda.NewPermission(ctx, "api-invoke-upload", &lambda.PermissionArgs{
		Action:    pulumi.String("lambda:InvokeFunction"),
		Function:  fn.Name,
		Principal: pulumi.String("apigateway.amazonaws.com"),
		SourceArn: pulumi.Sprintf("%s/*/*", api.ExecutionArn),
	}); err != nil {
		return nil, fmt.Errorf("permission: %w", err)
	}
	return api, nil
}

// routeName turns "GET /images/{id}" into "get-images-id" for a resource name.
func routeName(key string) string {
	out := make([]byte, 0, len(key))
	dash := false
	for _, r := range []byte(key) {
		switch {
		case r >= 'A' && r <= 'Z':
			out, dash = append(out, r+('a'-'A')), false
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			out, dash = append(out, r), false
		default:
			if !dash && len(out) > 0 {
				out, dash = append(out, '-'), true
			}
		}
	}
	if dash {
		out = out[:len(out)-1]
	}
	return string(out)
}

type lambdaRole struct {
	*iam.Role
	vpcAccess, policy pulumi.Resource
}

// newRole makes a function's role: the VPC access managed policy plus an
// inline policy naming only that function's queues, buckets and table.
func newRole(ctx *pulumi.Context, c *Config, st *storage, role string) (*lambdaRole, error) {
	assume, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Action": "sts:AssumeRole",
			"Principal": map[string]any{"Service": "lambda.amazonaws.com"},
		}},
	})
	if err != nil {
		return nil, err
	}
	r, err := iam.NewRole(ctx, "role-"+role, &iam.RoleArgs{
		AssumeRolePolicy: pulumi.String(assume),
		Description:      pulumi.String("Tally " + role + " function (" + c.Stack + ")"),
		Tags:             tags(c, role),
	})
	if err != nil {
		return nil, err
	}
	att, err := iam.NewRolePolicyAttachment(ctx, "role-"+role+"-vpc-access", &iam.RolePolicyAttachmentArgs{
		Role: r.Name, PolicyArn: pulumi.String(VPCAccessPolicy),
	})
	if err != nil {
		return nil, err
	}
	pol, err := iam.NewRolePolicy(ctx, "role-"+role+"-policy", &iam.RolePolicyArgs{
		Role:   r.Name,
		Policy: policyDocument(c, st, role),
	})
	if err != nil {
		return nil, err
	}
	return &lambdaRole{Role: r, vpcAccess: att, policy: pol}, nil
}

// statement is an IAM statement whose resources are still Outputs. When
// accessPoint is set, the statement holds only for mounts through it.
type statement struct {
	sid         string
	actions     []string
	resources   []pulumi.StringOutput
	accessPoint *pulumi.StringOutput
}

func policyDocument(c *Config, st *storage, role string) pulumi.StringOutput {
	a := accessOf(role)
	var stmts []statement
	for i, q := range a.queues {
		stmts = append(stmts, statement{sid: fmt.Sprintf("Queue%d", i), actions: q.actions, resources: []pulumi.StringOutput{st.queues[q.name].Arn}})
	}
	for i, b := range a.buckets {
		bucket := st.buckets[b.name]
		stmts = append(stmts,
			statement{sid: fmt.Sprintf("Bucket%dList", i), actions: []string{"s3:ListBucket"}, resources: []pulumi.StringOutput{bucket.Arn}},
			statement{sid: fmt.Sprintf("Bucket%dObjects", i), actions: b.actions, resources: []pulumi.StringOutput{pulumi.Sprintf("%s/*", bucket.Arn)}})
	}
	stmts = append(stmts, statement{sid: "Table", actions: tableRW, resources: []pulumi.StringOutput{
		st.table.Arn, pulumi.Sprintf("%s/index/*", st.table.Arn),
	}})
	if c.UsesEFS(role) {
		stmts = append(stmts, statement{sid: "EFS", actions: efsClient, resources: []pulumi.StringOutput{st.efs.Arn}, accessPoint: &st.ap.Arn})
	}

	// Resolve every Output at once, then lay the document out.
	var ins []any
	for _, s := range stmts {
		for _, r := range s.resources {
			ins = append(ins, r)
		}
		if s.accessPoint != nil {
			ins = append(ins, *s.accessPoint)
		}
	}
	return pulumi.All(ins...).ApplyT(func(vals []any) (string, error) {
		next := func() string { v := vals[0].(string); vals = vals[1:]; return v }
		var doc []map[string]any
		for _, s := range stmts {
			var res []string
			for range s.resources {
				res = append(res, next())
			}
			m := map[string]any{"Sid": s.sid, "Effect": "Allow", "Action": s.actions, "Resource": res}
			if s.accessPoint != nil {
				m["Condition"] = map[string]any{"StringEquals": map[string]any{"elasticfilesystem:AccessPointArn": next()}}
			}
			doc = append(doc, m)
		}
		b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": doc})
		return string(b), err
	}).(pulumi.StringOutput)
}
