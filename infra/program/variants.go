package program

import (
	"fmt"
	"maps"
)

// Variant is one named configuration of the stack, used for the committed
// graphs, the toggle tests and the cost table.
type Variant struct {
	Name, Description string
	Config            map[string]string // overrides on top of the base config
}

// Variants are the configurations worth comparing side by side.
var Variants = []Variant{
	{"default", "EFS off, NAT instance, SQS endpoint: the seed's current state", nil},
	{"efs", "EFS on (all three functions, storageMode auto)", map[string]string{"tally:efs": "true", "tally:storageMode": "auto"}},
	{"nat-gateway", "managed NAT gateways, one per zone, instead of the NAT instance", map[string]string{"tally:egress": EgressNATGateway}},
	{"no-egress", "no internet egress: endpoints only (no Places, no OpenAI)", map[string]string{"tally:egress": EgressNone}},
	{"no-sqs-endpoint", "SQS through the NAT instead of an interface endpoint", map[string]string{"tally:sqsEndpoint": "false"}},
}

// GraphBase is the config the committed graphs are generated from: the
// mock stack in us-east-1 with a Places key, so that secret redaction
// shows.
var GraphBase = map[string]string{
	"aws:region":               "us-east-1",
	"tally:googlePlacesApiKey": "not-a-real-key",
}

// GraphSecrets are the GraphBase keys passed as secrets.
var GraphSecrets = []string{"tally:googlePlacesApiKey"}

// With returns base overlaid with the variant's overrides.
func (v Variant) With(base map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, v.Config)
	return out
}

// GenerateGraph runs the program under the mocks for one variant and
// renders its graph file.
func GenerateGraph(v Variant) ([]byte, error) {
	m := &Mocks{}
	if err := RunMocked(v.With(GraphBase), GraphSecrets, m); err != nil {
		return nil, fmt.Errorf("variant %s: %w", v.Name, err)
	}
	return GraphJSON(m.Graph())
}
