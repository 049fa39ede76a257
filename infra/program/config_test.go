package program

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TestBadConfigFailsClearly runs the program with one bad value at a time:
// each must fail before anything is registered, naming the key.
func TestBadConfigFailsClearly(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		want string
	}{
		{"no region", map[string]string{"aws:region": ""}, "aws:region is not set"},
		{"unknown key", map[string]string{"tally:efsEnabled": "true"}, "tally:efsEnabled: unknown key"},
		{"efs not a bool", map[string]string{"tally:efs": "yes please"}, "tally:efs"},
		{"egress", map[string]string{"tally:egress": "nat"}, `egress "nat"`},
		{"x86 NAT type", map[string]string{"tally:natInstanceType": "t3.nano"}, "arm64 (Graviton)"},
		{"storage mode without efs", map[string]string{"tally:storageMode": "efs"}, "storageMode efs needs efs: true"},
		{"unknown storage mode", map[string]string{"tally:efs": "true", "tally:storageMode": "nfs"}, `storageMode "nfs"`},
		{"no egress, no endpoint", map[string]string{"tally:egress": "none", "tally:sqsEndpoint": "false"}, "could not reach SQS"},
		{"no egress, openai", map[string]string{"tally:egress": "none", "tally:embedderUrl": "openai://text-embedding-3-small"}, "unreachable without egress"},
		{"maxReceiveCount", map[string]string{"tally:maxReceiveCount": "3"}, "maxReceiveCount 3"},
		{"compact concurrency", map[string]string{"tally:compactMaxConcurrency": "1"}, "AWS's minimum is 2"},
		{"big batch, no window", map[string]string{"tally:processBatchSize": "50"}, "processBatchWindow of at least 1"},
		{"short delta expiry", map[string]string{"tally:deltaExpireDays": "1"}, "deltaExpireDays 1"},
		{"abort multipart", map[string]string{"tally:abortMultipartDays": "30"}, "abortMultipartDays 30"},
		{"timeout", map[string]string{"tally:functions": `{"process": {"timeout": 1200}}`}, "functions.process.timeout 1200"},
		{"upload timeout", map[string]string{"tally:functions": `{"upload": {"timeout": 60}}`}, "functions.upload.timeout 60"},
		{"function field typo", map[string]string{"tally:functions": `{"process": {"memroy": 512}}`}, "tally:functions"},
		{"function in public subnet", map[string]string{"tally:functions": `{"compact": {"subnets": ["public1"]}}`}, `"public1" is not a private subnet`},
		{"cidr outside vpc", map[string]string{"tally:privateCidrs": `["10.1.101.0/24", "10.0.102.0/24"]`}, "not inside the VPC"},
		{"overlapping cidrs", map[string]string{"tally:privateCidrs": `["10.0.0.0/24", "10.0.102.0/24"]`}, "overlaps"},
		{"zone of another region", map[string]string{"tally:azs": `["eu-west-1a", "eu-west-1b"]`}, "not a zone of region us-east-1"},
		{"zone count", map[string]string{"tally:privateAzs": `["us-east-1a"]`}, "one zone per subnet"},
		{"endpoint subnets share a zone", map[string]string{"tally:sqsEndpointSubnets": "public1,private1"}, "AWS allows one per zone"},
		{"unknown endpoint subnet", map[string]string{"tally:sqsEndpointSubnets": "private9"}, `unknown subnet "private9"`},
		{"efs mount subnets miss a zone", map[string]string{"tally:efs": "true", "tally:efsMountSubnets": "private1"}, "which has no mount target"},
		{"long prefix", map[string]string{"tally:namePrefix": strings.Repeat("x", 41)}, "namePrefix"},
		{"bad prefix chars", map[string]string{"tally:namePrefix": "tally.dev."}, "namePrefix"},
		{"delta prefix", map[string]string{"tally:deltaPrefix": "/deltas"}, "deltaPrefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Mocks{}
			err := RunMocked(withRegion(tc.cfg), nil, m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if n := len(m.Resources()); n != 0 {
				t.Errorf("%d resources registered before the error, want none", n)
			}
		})
	}
}

func withRegion(cfg map[string]string) map[string]string {
	out := map[string]string{"aws:region": "us-east-1"}
	for k, v := range cfg {
		out[k] = v
	}
	return out
}

// TestConfigDefaults pins the defaults the README documents.
func TestConfigDefaults(t *testing.T) {
	w := build(t, nil)
	c := w.cfg
	if c.NamePrefix != "tally-dev-" || c.Egress != EgressNATInstance || c.EFS || !c.SQSEndpoint || c.StorageMode != "s3" || c.NATInstanceType != "t4g.nano" {
		t.Errorf("defaults %+v", c)
	}
	var zones []string
	for _, s := range c.PrivateSubnets {
		zones = append(zones, s.CIDR+"@"+s.AZ)
	}
	if want := []string{"10.0.101.0/24@us-east-1a", "10.0.102.0/24@us-east-1b"}; !slices.Equal(zones, want) {
		t.Errorf("private subnets %v, want %v (two zones, unlike the seed)", zones, want)
	}
	// Public + first private, one per zone: private1 shares us-east-1a
	// with public1, so the default drops it.
	if want := []string{"public1", "public2"}; !slices.Equal(c.SQSEndpointSubnets, want) {
		t.Errorf("SQS endpoint subnets %v, want %v", c.SQSEndpointSubnets, want)
	}
}

// TestSeedZonesShareOneMountTarget reproduces the seed's layout (both
// private subnets in one zone): EFS then gets one mount target for both,
// keyed by zone, and the endpoint default keeps the seed's three subnets.
func TestSeedZonesShareOneMountTarget(t *testing.T) {
	w := build(t, map[string]string{"tally:efs": "true", "tally:privateAzs": `["us-east-1f", "us-east-1f"]`})
	mts := w.all("aws:efs/mountTarget:MountTarget")
	if len(mts) != 1 || mts[0].Name != "efs-mount-us-east-1f" {
		t.Fatalf("mount targets %v, want one in us-east-1f", mts)
	}
	if want := []string{"public1", "public2", "private1"}; !slices.Equal(w.cfg.SQSEndpointSubnets, want) {
		t.Errorf("SQS endpoint subnets %v, want %v", w.cfg.SQSEndpointSubnets, want)
	}
	if err := efsMountTargets(w); err != nil {
		t.Error(err)
	}
}

// TestEFSOnlyWhereMounted: a function limited to one subnet gets a mount
// target only in that zone, and the function left out of efsFunctions
// gets no file system.
func TestEFSOnlyWhereMounted(t *testing.T) {
	w := build(t, map[string]string{
		"tally:efs": "true", "tally:storageMode": "efs", "tally:efsFunctions": "compact",
		"tally:functions": `{"compact": {"subnets": ["private2"]}}`,
	})
	mts := w.all("aws:efs/mountTarget:MountTarget")
	if len(mts) != 1 || mts[0].Name != "efs-mount-us-east-1b" {
		t.Fatalf("mount targets %v, want one in us-east-1b", mts)
	}
	for role, mode := range map[string]string{RoleCompact: "efs", RoleProcess: "s3", RoleUpload: "s3"} {
		f, _ := w.fn(role)
		if got := str(in(f, "environment.variables.TALLY_VECTOR_MODE")); got != mode {
			t.Errorf("%s vector mode %q, want %q", role, got, mode)
		}
	}
	if err := efsMountTargets(w); err != nil {
		t.Error(err)
	}
}

// TestNATAMIMustBeARM: a lookup answering with an x86 image fails the run.
func TestNATAMIMustBeARM(t *testing.T) {
	err := RunMocked(withRegion(nil), nil, &Mocks{AMIArchitecture: "x86_64"})
	if err == nil || !strings.Contains(err.Error(), "want arm64") {
		t.Fatalf("err = %v, want the architecture mismatch", err)
	}
}

// TestNATAMIFromConfig skips the lookup when natAmi is set.
func TestNATAMIFromConfig(t *testing.T) {
	w := build(t, map[string]string{"tally:natAmi": "ami-0123456789abcdef0"})
	nat, _ := w.named("nat-instance")
	if got := str(in(nat, "ami")); got != "ami-0123456789abcdef0" || len(w.calls) != 0 {
		t.Errorf("ami %q after %d calls, want the configured one and no lookup", got, len(w.calls))
	}
}

// TestMissingArtifactFailsClearly runs the real artifact check: without
// `make lambda` the program stops with a message that says so.
func TestMissingArtifactFailsClearly(t *testing.T) {
	dir := t.TempDir()
	cfg := withRegion(map[string]string{"tally:artifactDir": dir})
	run := func() error {
		return pulumi.RunErr(Run(Options{}), pulumi.WithMocks("tally", MockStack, &Mocks{}), func(info *pulumi.RunInfo) { info.Config = cfg })
	}
	if err := run(); err == nil || !strings.Contains(err.Error(), "make lambda") || !strings.Contains(err.Error(), "process.zip") {
		t.Fatalf("err = %v, want a missing-artifact error naming make lambda", err)
	}
	for _, r := range Roles {
		if err := os.WriteFile(filepath.Join(dir, r+".zip"), []byte("PK"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(); err != nil {
		t.Fatalf("with the zips present: %v", err)
	}
}

// TestSecretsStaySecret: API keys reach the functions only as secrets.
func TestSecretsStaySecret(t *testing.T) {
	m := &Mocks{}
	cfg := withRegion(map[string]string{"tally:openaiApiKey": "sk-test", "tally:googlePlacesApiKey": "places-test"})
	if err := RunMocked(cfg, []string{"tally:openaiApiKey", "tally:googlePlacesApiKey"}, m); err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph() {
		b, _ := GraphJSON([]Node{n})
		if strings.Contains(string(b), "sk-test") || strings.Contains(string(b), "places-test") {
			t.Errorf("%s shows a secret in its graph", n.Name)
		}
		if n.Type == "aws:lambda/function:Function" {
			env := n.Inputs["environment"].(map[string]any)["variables"].(map[string]any)
			if env["OPENAI_API_KEY"] != "[secret]" || env["GOOGLE_PLACES_API_KEY"] != "[secret]" {
				t.Errorf("%s keys %v %v, want both set as secrets", n.Name, env["OPENAI_API_KEY"], env["GOOGLE_PLACES_API_KEY"])
			}
		}
	}
}
