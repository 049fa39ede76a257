package program

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Namespace is the stack-config namespace of every key this program reads.
const Namespace = "tally"

// Egress modes: how the private subnets reach the internet (OpenAI, Places).
const (
	EgressNATInstance = "nat-instance"
	EgressNATGateway  = "nat-gateway"
	EgressNone        = "none"
)

// Roles of the Lambda functions; each is also the handler name the binary
// dispatches on.
const (
	RoleProcess = "process"
	RoleCompact = "compact"
	RoleUpload  = "upload"
)

// Roles lists the functions in a fixed order, so that the graph is stable.
var Roles = []string{RoleProcess, RoleCompact, RoleUpload}

// Queue names (logical; SQS names are NamePrefix + name). They match
// pipeline.QueueOCRJobs etc. in the main module, which Tally opens by name.
const (
	QueueOCRJobs    = "ocr-jobs"
	QueueOCRResults = "ocr-results"
	QueueCompaction = "compaction"
	DLQSuffix       = "-dlq"
)

// Queues lists the pipeline queues in a fixed order.
var Queues = []string{QueueOCRJobs, QueueOCRResults, QueueCompaction}

// Limits that AWS enforces and that a bad config would otherwise only hit
// at deploy time.
const (
	sqsMaxVisibility   = 43200 // 12 h
	sqsNameMax         = 80
	sqsPrefixMax       = 40 // queue/sqs.MaxPrefixLen: Tally hashes longer names
	s3BucketPrefixMax  = 37 // bucketPrefix leaves room for the provider's unique suffix
	httpAPITimeoutMax  = 30 // an HTTP API integration times out after 30 s
	dlqRetentionSecond = 14 * 24 * 3600
	minDeltaExpireDays = 7
)

// Subnet is one subnet of the VPC, named by its role (public1, private2…).
type Subnet struct {
	Role string
	CIDR string
	AZ   string
}

// Function sizes one Lambda function.
type Function struct {
	Memory           int      `json:"memory"`
	Timeout          int      `json:"timeout"`
	EphemeralStorage int      `json:"ephemeralStorage"`
	Subnets          []string `json:"subnets"`
}

// Config is the parsed, defaulted and validated stack configuration. Secrets
// (API keys) are not in it: the program reads them as secret Outputs so they
// never reach a log or a graph.
type Config struct {
	Stack, Region string

	NamePrefix   string // queues, functions, table, API: "tally-<stack>-"
	BucketPrefix string // buckets get "<bucketPrefix><role>-" + a unique suffix
	TableName    string

	VPCCIDR        string
	PublicSubnets  []Subnet
	PrivateSubnets []Subnet

	Egress          string
	NATInstanceType string
	NATAMI          string // empty: look the AMI up

	SQSEndpoint        bool
	SQSEndpointSubnets []string // resolved: one subnet per AZ

	EFS             bool
	StorageMode     string
	EFSFunctions    []string
	EFSMountSubnets []string // resolved: one subnet per AZ that an EFS function uses

	Functions   map[string]Function
	ArtifactDir string
	EmbedderURL string

	MaxReceiveCount          int
	ProcessBatchSize         int
	ProcessBatchWindow       int
	CompactBatchSize         int
	CompactBatchWindow       int
	CompactMaxConcurrency    int
	OCRJobsVisibilityTimeout int

	DeltaPrefix          string
	VectorCollections    []string
	DeltaExpireDays      int
	AbortMultipartDays   int
	NoncurrentExpireDays int
}

// Getter reads one raw config value ("tally:efs", "aws:region"), as
// pulumi.Context.GetConfig does.
type Getter func(key string) (string, bool)

// keys are the tally: keys this program reads; anything else is a typo.
var keys = []string{
	"namePrefix", "bucketPrefix", "tableName",
	"vpcCidr", "azs", "privateAzs", "publicCidrs", "privateCidrs",
	"egress", "natInstanceType", "natAmi",
	"sqsEndpoint", "sqsEndpointSubnets",
	"efs", "storageMode", "efsFunctions", "efsMountSubnets",
	"functions", "artifactDir", "embedderUrl",
	"maxReceiveCount", "processBatchSize", "processBatchWindow",
	"compactBatchSize", "compactBatchWindow", "compactMaxConcurrency",
	"ocrJobsVisibilityTimeout",
	"deltaPrefix", "vectorCollections", "deltaExpireDays", "abortMultipartDays", "noncurrentExpireDays",
	"openaiApiKey", "googlePlacesApiKey",
}

// DefaultFunctions are the function sizes when config says nothing.
// Process makes renditions and embeddings (memory, /tmp cache); compact
// merges segments (long, large /tmp); upload answers HTTP within 30 s.
func DefaultFunctions() map[string]Function {
	return map[string]Function{
		RoleProcess: {Memory: 2048, Timeout: 300, EphemeralStorage: 2048},
		RoleCompact: {Memory: 1536, Timeout: 600, EphemeralStorage: 4096},
		RoleUpload:  {Memory: 1024, Timeout: 30, EphemeralStorage: 1024},
	}
}

// ParseConfig reads the stack's config through get, fills defaults and
// validates everything, so that a bad value is one clear error before any
// resource is registered. all lists every raw key present (nil to skip the
// unknown-key check).
func ParseConfig(stack string, get Getter, all []string) (Config, error) {
	p := parser{get: get}
	for _, k := range all {
		ns, name, ok := strings.Cut(k, ":")
		if ok && ns == Namespace && !slices.Contains(keys, name) {
			return Config{}, fmt.Errorf("config %s: unknown key (known: %s)", k, strings.Join(keys, ", "))
		}
	}
	c := Config{Stack: stack}
	region, ok := get("aws:region")
	if !ok || region == "" {
		return Config{}, fmt.Errorf("config aws:region is not set: run `pulumi config set aws:region us-east-1`")
	}
	if !regionRE.MatchString(region) {
		return Config{}, fmt.Errorf("config aws:region %q: want a region such as us-east-1", region)
	}
	c.Region = region

	c.NamePrefix = p.str("namePrefix", "tally-"+sanitize(stack, false)+"-")
	c.BucketPrefix = p.str("bucketPrefix", strings.ToLower(sanitize(c.NamePrefix, true)))
	c.TableName = p.str("tableName", c.NamePrefix+"items")
	c.VPCCIDR = p.str("vpcCidr", "10.0.0.0/16")
	azs := p.list("azs", []string{region + "a", region + "b"})
	privAZs := p.list("privateAzs", azs)
	pubCIDRs := p.list("publicCidrs", []string{"10.0.0.0/24", "10.0.1.0/24"})
	privCIDRs := p.list("privateCidrs", []string{"10.0.101.0/24", "10.0.102.0/24"})
	c.Egress = p.str("egress", EgressNATInstance)
	c.NATInstanceType = p.str("natInstanceType", "t4g.nano")
	c.NATAMI = p.str("natAmi", "")
	c.SQSEndpoint = p.boolean("sqsEndpoint", true)
	endpointRoles, endpointSet := p.listSet("sqsEndpointSubnets")
	c.EFS = p.boolean("efs", false)
	c.StorageMode = p.str("storageMode", "")
	c.EFSFunctions = p.list("efsFunctions", slices.Clone(Roles))
	mountRoles, mountSet := p.listSet("efsMountSubnets")
	c.Functions = p.functions("functions")
	c.ArtifactDir = p.str("artifactDir", "../dist")
	c.EmbedderURL = p.str("embedderUrl", "hashed://512")
	c.MaxReceiveCount = p.integer("maxReceiveCount", 5)
	c.ProcessBatchSize = p.integer("processBatchSize", 10)
	c.ProcessBatchWindow = p.integer("processBatchWindow", 0)
	c.CompactBatchSize = p.integer("compactBatchSize", 100)
	c.CompactBatchWindow = p.integer("compactBatchWindow", 5)
	c.CompactMaxConcurrency = p.integer("compactMaxConcurrency", 2)
	c.OCRJobsVisibilityTimeout = p.integer("ocrJobsVisibilityTimeout", 300)
	c.DeltaPrefix = p.str("deltaPrefix", "deltas/")
	c.VectorCollections = p.list("vectorCollections", []string{"lines", "words"})
	c.DeltaExpireDays = p.integer("deltaExpireDays", 30)
	c.AbortMultipartDays = p.integer("abortMultipartDays", 2)
	c.NoncurrentExpireDays = p.integer("noncurrentExpireDays", 14)
	if p.err != nil {
		return Config{}, p.err
	}
	if c.StorageMode == "" {
		c.StorageMode = "s3"
	}

	var err error
	if c.PublicSubnets, err = subnets("public", pubCIDRs, azs, region); err != nil {
		return Config{}, err
	}
	if c.PrivateSubnets, err = subnets("private", privCIDRs, privAZs, region); err != nil {
		return Config{}, err
	}
	for role, f := range c.Functions {
		if f.Subnets == nil {
			for _, s := range c.PrivateSubnets {
				f.Subnets = append(f.Subnets, s.Role)
			}
			c.Functions[role] = f
		}
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	if c.SQSEndpointSubnets, err = c.endpointSubnets(endpointRoles, endpointSet); err != nil {
		return Config{}, err
	}
	if c.EFSMountSubnets, err = c.mountSubnets(mountRoles, mountSet); err != nil {
		return Config{}, err
	}
	return c, nil
}

var (
	regionRE      = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	queuePrefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)
	bucketRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// gravitonRE matches arm64 (Graviton) instance types: the family has a
	// "g" after its generation digit (t4g, c7gn, m8g…).
	gravitonRE    = regexp.MustCompile(`^[a-z]+[0-9]+[a-z]*g[a-z]*\.[a-z0-9]+$`)
	collectionRE  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	deltaPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/$`)
)

// sanitize maps a stack name to characters SQS (and, lower, S3) accept.
func sanitize(s string, bucket bool) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			if bucket {
				return r + ('a' - 'A')
			}
			return r
		case r == '_' && !bucket:
			return r
		}
		return '-'
	}, s)
}

func subnets(kind string, cidrs, azs []string, region string) ([]Subnet, error) {
	if len(cidrs) == 0 || len(cidrs) > 6 {
		return nil, fmt.Errorf("config %s:%sCidrs: want 1 to 6 subnets, got %d", Namespace, kind, len(cidrs))
	}
	key := "azs"
	if kind == "private" {
		key = "privateAzs"
	}
	if len(azs) != len(cidrs) {
		return nil, fmt.Errorf("config %s:%s has %d zones but %s:%sCidrs has %d subnets: give one zone per subnet", Namespace, key, len(azs), Namespace, kind, len(cidrs))
	}
	out := make([]Subnet, len(cidrs))
	for i := range cidrs {
		az := azs[i]
		if !strings.HasPrefix(az, region) || len(az) != len(region)+1 || az[len(az)-1] < 'a' || az[len(az)-1] > 'z' {
			return nil, fmt.Errorf("config %s:%s: zone %q is not a zone of region %s (want e.g. %sa)", Namespace, key, az, region, region)
		}
		out[i] = Subnet{Role: fmt.Sprintf("%s%d", kind, i+1), CIDR: cidrs[i], AZ: az}
	}
	return out, nil
}

// validate checks every value against what AWS and Tally accept.
func (c *Config) validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	if !queuePrefixRE.MatchString(c.NamePrefix) || len(c.NamePrefix) > sqsPrefixMax {
		bad("namePrefix %q: want up to %d characters of A-Z, a-z, 0-9, '-' and '_' (Tally's SQS prefix rule)", c.NamePrefix, sqsPrefixMax)
	} else if n := len(c.NamePrefix + QueueOCRResults + DLQSuffix); n > sqsNameMax {
		bad("namePrefix %q: queue names would be %d characters, SQS allows %d", c.NamePrefix, n, sqsNameMax)
	}
	if !bucketRE.MatchString(c.BucketPrefix) || len(c.BucketPrefix+"vectors-") > s3BucketPrefixMax {
		bad("bucketPrefix %q: want lowercase letters, digits and '-', at most %d characters", c.BucketPrefix, s3BucketPrefixMax-len("vectors-"))
	}
	if c.TableName == "" || len(c.TableName) > 255 {
		bad("tableName %q: want 1 to 255 characters", c.TableName)
	}

	vpc, err := netip.ParsePrefix(c.VPCCIDR)
	if err != nil || !vpc.Addr().Is4() || vpc.Bits() < 16 || vpc.Bits() > 28 || vpc.Masked() != vpc {
		bad("vpcCidr %q: want an IPv4 network between /16 and /28", c.VPCCIDR)
	} else {
		var seen []netip.Prefix
		for _, s := range c.subnets() {
			p, err := netip.ParsePrefix(s.CIDR)
			switch {
			case err != nil || !p.Addr().Is4() || p.Masked() != p:
				bad("%s CIDR %q: not an IPv4 network", s.Role, s.CIDR)
			case !vpc.Contains(p.Addr()) || p.Bits() < vpc.Bits() || p.Bits() > 28:
				bad("%s CIDR %s: not inside the VPC %s (or smaller than /28)", s.Role, s.CIDR, c.VPCCIDR)
			default:
				for _, o := range seen {
					if o.Overlaps(p) {
						bad("%s CIDR %s overlaps %s", s.Role, s.CIDR, o)
					}
				}
				seen = append(seen, p)
			}
		}
	}

	switch c.Egress {
	case EgressNATInstance, EgressNATGateway, EgressNone:
	default:
		bad("egress %q: want %s, %s or %s", c.Egress, EgressNATInstance, EgressNATGateway, EgressNone)
	}
	if !gravitonRE.MatchString(c.NATInstanceType) {
		bad("natInstanceType %q: want an arm64 (Graviton) type such as t4g.nano: the NAT AMI is arm64", c.NATInstanceType)
	}
	if c.Egress == EgressNone && !c.SQSEndpoint {
		bad("egress none with sqsEndpoint false: the functions could not reach SQS at all (turn one on)")
	}
	if c.Egress == EgressNone && strings.HasPrefix(c.EmbedderURL, "openai://") && !strings.Contains(c.EmbedderURL, "base=") {
		bad("egress none: embedderUrl %q needs api.openai.com, which is unreachable without egress", c.EmbedderURL)
	}

	switch c.StorageMode {
	case "s3":
	case "efs", "efs-copy", "auto":
		if !c.EFS {
			bad("storageMode %s needs efs: true (set tally:efs true, or storageMode s3)", c.StorageMode)
		}
	default:
		bad("storageMode %q: want s3, efs, efs-copy or auto", c.StorageMode)
	}
	for _, r := range c.EFSFunctions {
		if !slices.Contains(Roles, r) {
			bad("efsFunctions: %q is not a function (want some of %s)", r, strings.Join(Roles, ", "))
		}
	}
	if c.EFS && len(c.EFSFunctions) == 0 {
		bad("efs is on but efsFunctions is empty: no function would mount it")
	}

	privRoles := map[string]bool{}
	for _, s := range c.PrivateSubnets {
		privRoles[s.Role] = true
	}
	for _, r := range Roles {
		f := c.Functions[r]
		if f.Memory < 128 || f.Memory > 10240 {
			bad("functions.%s.memory %d: want 128 to 10240 MB", r, f.Memory)
		}
		if f.Timeout < 1 || f.Timeout > 900 {
			bad("functions.%s.timeout %d: want 1 to 900 seconds", r, f.Timeout)
		}
		if f.EphemeralStorage < 512 || f.EphemeralStorage > 10240 {
			bad("functions.%s.ephemeralStorage %d: want 512 to 10240 MB", r, f.EphemeralStorage)
		}
		if len(f.Subnets) == 0 {
			bad("functions.%s.subnets is empty", r)
		}
		for _, s := range f.Subnets {
			if !privRoles[s] {
				bad("functions.%s.subnets: %q is not a private subnet (functions run only in private subnets; have %s)", r, s, strings.Join(sortedKeys(privRoles), ", "))
			}
		}
	}
	if t := c.Functions[RoleUpload].Timeout; t > httpAPITimeoutMax {
		bad("functions.upload.timeout %d: the HTTP API gives up after %d s", t, httpAPITimeoutMax)
	}

	if c.MaxReceiveCount < 5 || c.MaxReceiveCount > 1000 {
		bad("maxReceiveCount %d: want 5 to 1000 (fewer sends a message to the dead-letter queue on a transient failure)", c.MaxReceiveCount)
	}
	batch := func(name string, size, window int) {
		if size < 1 || size > 10000 {
			bad("%sBatchSize %d: want 1 to 10000", name, size)
		}
		if window < 0 || window > 300 {
			bad("%sBatchWindow %d: want 0 to 300 seconds", name, window)
		}
		if size > 10 && window < 1 {
			bad("%sBatchSize %d: SQS batches above 10 need %sBatchWindow of at least 1 s", name, size, name)
		}
	}
	batch("process", c.ProcessBatchSize, c.ProcessBatchWindow)
	batch("compact", c.CompactBatchSize, c.CompactBatchWindow)
	if c.CompactMaxConcurrency < 2 || c.CompactMaxConcurrency > 1000 {
		bad("compactMaxConcurrency %d: want 2 to 1000 (AWS's minimum is 2)", c.CompactMaxConcurrency)
	}
	if c.OCRJobsVisibilityTimeout < 0 || c.OCRJobsVisibilityTimeout > sqsMaxVisibility {
		bad("ocrJobsVisibilityTimeout %d: want 0 to %d seconds", c.OCRJobsVisibilityTimeout, sqsMaxVisibility)
	}

	if !deltaPrefixRE.MatchString(c.DeltaPrefix) {
		bad("deltaPrefix %q: want a relative key prefix ending in '/', such as deltas/", c.DeltaPrefix)
	}
	if len(c.VectorCollections) == 0 {
		bad("vectorCollections is empty")
	}
	for _, v := range c.VectorCollections {
		if !collectionRE.MatchString(v) {
			bad("vectorCollections: %q is not a collection name", v)
		}
	}
	if c.DeltaExpireDays < minDeltaExpireDays {
		bad("deltaExpireDays %d: want at least %d: the rule is a safety net behind compaction's own GC, and a short one deletes deltas not yet compacted", c.DeltaExpireDays, minDeltaExpireDays)
	}
	if c.AbortMultipartDays < 1 || c.AbortMultipartDays > 7 {
		bad("abortMultipartDays %d: want 1 to 7", c.AbortMultipartDays)
	}
	if c.NoncurrentExpireDays < 1 {
		bad("noncurrentExpireDays %d: want at least 1", c.NoncurrentExpireDays)
	}
	if len(errs) > 0 {
		return fmt.Errorf("stack config (%s:…): %s", Namespace, strings.Join(errs, "; "))
	}
	return nil
}

// endpointSubnets resolves the SQS endpoint's subnets. An interface
// endpoint takes one subnet per AZ: an explicit list that repeats an AZ is
// an error; the default (public subnets + first private, as the seed) keeps
// the first subnet of each AZ.
func (c *Config) endpointSubnets(roles []string, explicit bool) ([]string, error) {
	if !explicit {
		roles = nil
		for _, s := range c.PublicSubnets {
			roles = append(roles, s.Role)
		}
		roles = append(roles, c.PrivateSubnets[0].Role)
	}
	return c.onePerAZ("sqsEndpointSubnets", roles, explicit)
}

// mountSubnets resolves where EFS mount targets go: by default one subnet
// in every AZ that an EFS-using function's subnets are in. An explicit list
// must still cover every such AZ, since a function mounting EFS from an AZ
// without a mount target hangs at init (the seed's failure).
func (c *Config) mountSubnets(roles []string, explicit bool) ([]string, error) {
	if !c.EFS {
		if explicit {
			return nil, fmt.Errorf("config %s:efsMountSubnets is set but efs is off", Namespace)
		}
		return nil, nil
	}
	if !explicit {
		roles = nil
		for _, r := range c.EFSFunctions {
			roles = append(roles, c.Functions[r].Subnets...)
		}
	}
	got, err := c.onePerAZ("efsMountSubnets", roles, explicit)
	if err != nil {
		return nil, err
	}
	covered := map[string]bool{}
	for _, r := range got {
		covered[c.Subnet(r).AZ] = true
	}
	for _, fn := range c.EFSFunctions {
		for _, r := range c.Functions[fn].Subnets {
			if az := c.Subnet(r).AZ; !covered[az] {
				return nil, fmt.Errorf("config %s:efsMountSubnets: function %s mounts EFS from subnet %s in %s, which has no mount target (add a subnet in %s, or move the function)", Namespace, fn, r, az, az)
			}
		}
	}
	return got, nil
}

func (c *Config) onePerAZ(key string, roles []string, strict bool) ([]string, error) {
	byAZ := map[string]string{}
	var out []string
	for _, r := range roles {
		s := c.Subnet(r)
		if s.Role == "" {
			return nil, fmt.Errorf("config %s:%s: unknown subnet %q (have %s)", Namespace, key, r, strings.Join(c.subnetRoles(), ", "))
		}
		if prev, ok := byAZ[s.AZ]; ok {
			if strict && prev != r {
				return nil, fmt.Errorf("config %s:%s: subnets %s and %s are both in %s, and AWS allows one per zone", Namespace, key, prev, r, s.AZ)
			}
			continue
		}
		byAZ[s.AZ] = r
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("config %s:%s is empty", Namespace, key)
	}
	return out, nil
}

// Subnet returns the subnet with the given role (zero if none).
func (c *Config) Subnet(role string) Subnet {
	for _, s := range c.subnets() {
		if s.Role == role {
			return s
		}
	}
	return Subnet{}
}

func (c *Config) subnets() []Subnet {
	return append(slices.Clone(c.PublicSubnets), c.PrivateSubnets...)
}

func (c *Config) subnetRoles() []string {
	var out []string
	for _, s := range c.subnets() {
		out = append(out, s.Role)
	}
	return out
}

// UsesEFS reports whether the function with this role mounts the file system.
func (c *Config) UsesEFS(role string) bool {
	return c.EFS && slices.Contains(c.EFSFunctions, role)
}

// VectorMode is the TALLY_VECTOR_MODE of a function: the configured storage
// mode where the function mounts EFS, s3 elsewhere.
func (c *Config) VectorMode(role string) string {
	if c.UsesEFS(role) {
		return c.StorageMode
	}
	return "s3"
}

// VisibilityTimeout is the visibility timeout of a queue: for a queue a
// function consumes, AWS's rule of at least six times the function's
// timeout plus its batching window, so a batch never reappears while it is
// still being worked on.
func (c *Config) VisibilityTimeout(queue string) int {
	switch queue {
	case QueueOCRResults:
		return 6*c.Functions[RoleProcess].Timeout + c.ProcessBatchWindow
	case QueueCompaction:
		return 6*c.Functions[RoleCompact].Timeout + c.CompactBatchWindow
	}
	return c.OCRJobsVisibilityTimeout
}

// Consumer is the Lambda role that consumes a queue ("" for ocr-jobs,
// which the OCR worker outside Lambda consumes).
func Consumer(queue string) string {
	switch queue {
	case QueueOCRResults:
		return RoleProcess
	case QueueCompaction:
		return RoleCompact
	}
	return ""
}

// DeltaRulePrefixes are the key prefixes of the delta safety-net rule: one
// per collection, since Tally writes deltas at <collection>/deltas/<run>.seg
// and S3 lifecycle filters match only prefixes.
func (c *Config) DeltaRulePrefixes() []string {
	var out []string
	for _, coll := range c.VectorCollections {
		out = append(out, coll+"/"+c.DeltaPrefix)
	}
	return out
}

type parser struct {
	get Getter
	err error
}

func (p *parser) raw(key string) (string, bool) {
	v, ok := p.get(Namespace + ":" + key)
	return v, ok && v != ""
}

func (p *parser) fail(key, v, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("config %s:%s = %q: want %s", Namespace, key, v, want)
	}
}

func (p *parser) str(key, def string) string {
	if v, ok := p.raw(key); ok {
		return v
	}
	return def
}

func (p *parser) boolean(key string, def bool) bool {
	v, ok := p.raw(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(key, v, "true or false")
		return def
	}
	return b
}

func (p *parser) integer(key string, def int) int {
	v, ok := p.raw(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(key, v, "an integer")
		return def
	}
	return n
}

// listSet reads a list: a JSON array (what `pulumi config set --path`
// stores) or a comma-separated string.
func (p *parser) listSet(key string) ([]string, bool) {
	v, ok := p.raw(key)
	if !ok {
		return nil, false
	}
	var out []string
	if strings.HasPrefix(strings.TrimSpace(v), "[") {
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			p.fail(key, v, "a list of strings")
			return nil, false
		}
		return out, true
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, true
}

func (p *parser) list(key string, def []string) []string {
	if v, ok := p.listSet(key); ok {
		return v
	}
	return def
}

// functions reads the functions object; each given field overrides the
// default of that function only.
func (p *parser) functions(key string) map[string]Function {
	fns := DefaultFunctions()
	v, ok := p.raw(key)
	if ok {
		var over map[string]json.RawMessage
		if err := json.Unmarshal([]byte(v), &over); err != nil {
			p.fail(key, v, `an object such as {"process": {"memory": 2048, "timeout": 300}}`)
			return fns
		}
		for role, raw := range over {
			f, known := fns[role]
			if !known {
				p.fail(key, v, "functions named "+strings.Join(Roles, ", "))
				return fns
			}
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&f); err != nil {
				p.fail(key, v, fmt.Sprintf("for %s the fields memory, timeout, ephemeralStorage (integers) and subnets (%v)", role, err))
				return fns
			}
			fns[role] = f
		}
	}
	return fns
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
