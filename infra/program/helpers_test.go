package program

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// world is one mocked run: the parsed config and what was registered.
type world struct {
	cfg   Config
	res   []Registered
	calls []Invoked
}

// build runs the program under the mocks with raw config overrides.
func build(t *testing.T, config map[string]string) *world {
	t.Helper()
	w, err := tryBuild(config)
	if err != nil {
		t.Fatalf("build %v: %v", config, err)
	}
	return w
}

func tryBuild(config map[string]string) (*world, error) {
	cfg := map[string]string{"aws:region": "us-east-1"}
	for k, v := range config {
		cfg[k] = v
	}
	m := &Mocks{}
	if err := RunMocked(cfg, nil, m); err != nil {
		return nil, err
	}
	c, err := ParseConfig(MockStack, func(k string) (string, bool) { v, ok := cfg[k]; return v, ok }, nil)
	if err != nil {
		return nil, err
	}
	return &world{cfg: c, res: m.Resources(), calls: m.Calls()}, nil
}

func (w *world) all(typ string) []Registered {
	var out []Registered
	for _, r := range w.res {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func (w *world) named(name string) (Registered, bool) {
	for _, r := range w.res {
		if r.Name == name {
			return r, true
		}
	}
	return Registered{}, false
}

func (w *world) byID(typ, id string) (Registered, bool) {
	for _, r := range w.all(typ) {
		if r.ID == id {
			return r, true
		}
	}
	return Registered{}, false
}

// in reads an input by a dotted path ("vpcConfig.subnetIds").
func in(r Registered, path string) any {
	var v any = PlainMap(r.Inputs)
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func out(r Registered, key string) string {
	if v, ok := r.Outputs[resource.PropertyKey(key)]; ok && v.IsString() {
		return v.StringValue()
	}
	return ""
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return -1
}

func strs(v any) []string {
	var out []string
	a, _ := v.([]any)
	for _, e := range a {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// fn returns a function by role.
func (w *world) fn(role string) (Registered, bool) { return w.named("fn-" + role) }

// policy parses a role's inline policy.
func (w *world) policy(role string) (policyDoc, error) {
	r, ok := w.named("role-" + role + "-policy")
	if !ok {
		return policyDoc{}, fmt.Errorf("no inline policy for %s", role)
	}
	var d policyDoc
	if err := json.Unmarshal([]byte(str(in(r, "policy"))), &d); err != nil {
		return d, fmt.Errorf("policy of %s: %w", role, err)
	}
	return d, nil
}

type policyDoc struct {
	Statement []struct {
		Effect    string
		Action    []string
		Resource  []string
		Condition map[string]map[string]string
	}
}

// subnetAZ maps subnet ids to zones, from the registered subnets.
func (w *world) subnetAZ() map[string]string {
	m := map[string]string{}
	for _, s := range w.all("aws:ec2/subnet:Subnet") {
		m[s.ID] = str(in(s, "availabilityZone"))
	}
	return m
}

// onlyFromLambdaSG checks a security group admits exactly one TCP port,
// from the Lambda security group only.
func (w *world) onlyFromLambdaSG(name string, port int) error {
	sg, ok := w.named(name)
	if !ok {
		return fmt.Errorf("no security group %s", name)
	}
	lambdaSG, _ := w.named("sg-lambda")
	rules, _ := in(sg, "ingress").([]any)
	if len(rules) != 1 {
		return fmt.Errorf("%s: %d ingress rules, want 1", name, len(rules))
	}
	r := rules[0].(map[string]any)
	if str(r["protocol"]) != "tcp" || num(r["fromPort"]) != port || num(r["toPort"]) != port {
		return fmt.Errorf("%s: ingress %v, want tcp %d only", name, r, port)
	}
	if got := strs(r["securityGroups"]); !slices.Equal(got, []string{lambdaSG.ID}) {
		return fmt.Errorf("%s: ingress from %v, want only the Lambda SG %s", name, got, lambdaSG.ID)
	}
	if len(strs(r["cidrBlocks"])) > 0 || len(strs(r["ipv6CidrBlocks"])) > 0 || r["self"] == true {
		return fmt.Errorf("%s: ingress also from %v", name, r)
	}
	return nil
}
