package program

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// MockAccount is the account id in every ARN and URL the mocks invent.
const MockAccount = "123456789012"

// MockAMI is the image the mocked AMI lookup returns.
const MockAMI = "ami-0a1b2c3d4e5f60718"

// Registered is one resource as the program registered it under the mocks.
type Registered struct {
	Type, Name, ID string
	Inputs         resource.PropertyMap // as given to the provider
	Outputs        resource.PropertyMap // what the mock answered
	Dependencies   []string             // names of the resources it depends on
}

// Invoked is one provider function call (a data-source lookup).
type Invoked struct {
	Token string
	Args  resource.PropertyMap
}

// Mocks answers the Pulumi engine's calls in memory with deterministic ids
// and ARNs derived from resource names, and records every registration so
// tests and the graph command can inspect the program's inputs.
type Mocks struct {
	Region string
	// AMIArchitecture is what the AMI lookup reports (default arm64), so a
	// test can make the lookup return the wrong image.
	AMIArchitecture string

	mu        sync.Mutex
	resources []Registered
	calls     []Invoked
}

var _ pulumi.MockResourceMonitor = (*Mocks)(nil)

// NewResource answers a registration and records it.
func (m *Mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	id, extra := m.invent(args)
	out := args.Inputs.Copy()
	for k, v := range extra {
		out[resource.PropertyKey(k)] = resource.NewStringProperty(v)
	}
	var deps []string
	if args.RegisterRPC != nil {
		for _, urn := range args.RegisterRPC.GetDependencies() {
			deps = append(deps, urnName(urn))
		}
	}
	sort.Strings(deps)
	deps = slices.Compact(deps)
	m.mu.Lock()
	m.resources = append(m.resources, Registered{
		Type: args.TypeToken, Name: args.Name, ID: id,
		Inputs: args.Inputs, Outputs: out, Dependencies: deps,
	})
	m.mu.Unlock()
	return id, out, nil
}

// Call answers the AMI lookup; any other call is a program change the
// mocks must learn about, so it fails.
func (m *Mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	m.mu.Lock()
	m.calls = append(m.calls, Invoked{Token: args.Token, Args: args.Args})
	m.mu.Unlock()
	switch args.Token {
	case "aws:ec2/getAmi:getAmi":
		arch := m.AMIArchitecture
		if arch == "" {
			arch = "arm64"
		}
		return resource.NewPropertyMapFromMap(map[string]any{
			"id":                 MockAMI,
			"imageId":            MockAMI,
			"architecture":       arch,
			"name":               "al2023-ami-2023.9.20261120.0-kernel-6.12-" + arch,
			"ownerId":            "137112412989",
			"virtualizationType": "hvm",
		}), nil
	}
	return nil, fmt.Errorf("mocks: unexpected call %s", args.Token)
}

// invent returns the id and the computed outputs of a resource.
func (m *Mocks) invent(args pulumi.MockResourceArgs) (string, map[string]string) {
	in := func(k string) string {
		if v, ok := args.Inputs[resource.PropertyKey(k)]; ok && v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	arn := func(svc, rest string) string {
		return fmt.Sprintf("arn:aws:%s:%s:%s:%s", svc, m.Region, MockAccount, rest)
	}
	id := args.Name + "-id"
	out := map[string]string{}
	switch args.TypeToken {
	case "aws:sqs/queue:Queue":
		name := in("name")
		id = fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", m.Region, MockAccount, name)
		out["url"], out["arn"] = id, arn("sqs", name)
	case "aws:s3/bucketV2:BucketV2":
		id = in("bucketPrefix") + "20261129000000000000000001"
		out["bucket"], out["arn"] = id, "arn:aws:s3:::"+id
	case "aws:dynamodb/table:Table":
		id = in("name")
		out["arn"] = arn("dynamodb", "table/"+id)
		out["streamArn"] = out["arn"] + "/stream/2026-11-29T00:00:00.000"
	case "aws:lambda/function:Function":
		id = in("name")
		out["arn"] = arn("lambda", "function:"+id)
		out["invokeArn"] = fmt.Sprintf("arn:aws:apigateway:%s:lambda:path/2015-03-31/functions/%s/invocations", m.Region, out["arn"])
	case "aws:iam/role:Role":
		id = args.Name
		out["name"], out["arn"] = id, fmt.Sprintf("arn:aws:iam::%s:role/%s", MockAccount, id)
	case "aws:ec2/instance:Instance":
		out["primaryNetworkInterfaceId"] = args.Name + "-eni-id"
		out["arn"] = arn("ec2", "instance/"+id)
	case "aws:efs/fileSystem:FileSystem":
		out["arn"] = arn("elasticfilesystem", "file-system/"+id)
	case "aws:efs/accessPoint:AccessPoint":
		out["arn"] = arn("elasticfilesystem", "access-point/"+id)
	case "aws:apigatewayv2/api:Api":
		out["executionArn"] = arn("execute-api", id)
		out["apiEndpoint"] = fmt.Sprintf("https://%s.execute-api.%s.amazonaws.com", id, m.Region)
	default:
		out["arn"] = arn(strings.SplitN(args.TypeToken, "/", 2)[0][len("aws:"):], id)
	}
	out["id"] = id
	return id, out
}

// Resources returns what was registered, sorted by type and name.
func (m *Mocks) Resources() []Registered {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.resources)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Calls returns the provider function calls made.
func (m *Mocks) Calls() []Invoked {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

func urnName(urn string) string {
	if i := strings.LastIndex(urn, "::"); i >= 0 {
		return urn[i+2:]
	}
	return urn
}

// MockStack is the stack name of mocked runs (graphs, tests).
const MockStack = "dev"

// RunMocked runs the program under the mocks with the given raw config
// ("tally:efs" → "true"; "aws:region" defaults to us-east-1) and returns
// the mocks holding what was registered. Keys listed in secret are passed
// as secret config. Artifacts are not checked: the zips need not exist.
func RunMocked(config map[string]string, secret []string, mocks *Mocks) error {
	cfg := maps.Clone(config)
	if cfg == nil {
		cfg = map[string]string{}
	}
	if _, ok := cfg["aws:region"]; !ok {
		cfg["aws:region"] = "us-east-1"
	}
	if mocks.Region == "" {
		mocks.Region = cfg["aws:region"]
	}
	keys := slices.Sorted(maps.Keys(cfg))
	prog := Run(Options{
		ConfigKeys:    func() []string { return keys },
		CheckArtifact: func(string) error { return nil },
	})
	return pulumi.RunErr(prog, pulumi.WithMocks("tally", MockStack, mocks), func(info *pulumi.RunInfo) {
		info.Config = cfg
		info.ConfigSecretKeys = secret
	})
}

// Plain turns provider inputs into plain JSON values: secrets become
// "[secret]", archives and assets their path, whole numbers ints.
func Plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return "[secret]"
	case v.IsComputed():
		return "[unknown]"
	case v.IsOutput():
		o := v.OutputValue()
		if o.Secret {
			return "[secret]"
		}
		if !o.Known {
			return "[unknown]"
		}
		return Plain(o.Element)
	case v.IsNull():
		return nil
	case v.IsBool():
		return v.BoolValue()
	case v.IsNumber():
		f := v.NumberValue()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f)
		}
		return f
	case v.IsString():
		return v.StringValue()
	case v.IsArray():
		out := []any{}
		for _, e := range v.ArrayValue() {
			out = append(out, Plain(e))
		}
		return out
	case v.IsObject():
		return PlainMap(v.ObjectValue())
	case v.IsArchive():
		a := v.ArchiveValue()
		return map[string]any{"archive": a.Path}
	case v.IsAsset():
		a := v.AssetValue()
		return map[string]any{"asset": a.Path}
	case v.IsResourceReference():
		return map[string]any{"resource": urnName(string(v.ResourceReferenceValue().URN))}
	}
	return fmt.Sprint(v)
}

// PlainMap is Plain for a property map.
func PlainMap(m resource.PropertyMap) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[string(k)] = Plain(v)
	}
	return out
}

// Node is one resource of a graph file.
type Node struct {
	Type         string         `json:"type"`
	Name         string         `json:"name"`
	Inputs       map[string]any `json:"inputs"`
	Dependencies []string       `json:"dependencies"`
}

// Graph returns the registered resources as graph nodes, sorted.
func (m *Mocks) Graph() []Node {
	var out []Node
	for _, r := range m.Resources() {
		deps := r.Dependencies
		if deps == nil {
			deps = []string{}
		}
		out = append(out, Node{Type: r.Type, Name: r.Name, Inputs: PlainMap(r.Inputs), Dependencies: deps})
	}
	return out
}

// GraphJSON renders a graph file: indented, keys sorted, one trailing newline.
func GraphJSON(nodes []Node) ([]byte, error) {
	b, err := json.MarshalIndent(nodes, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
