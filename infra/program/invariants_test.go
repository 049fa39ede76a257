package program

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// An invariant is checked on every variant by its own test, and on every
// toggle combination by TestToggleCombinations.
type invariant func(w *world) error

var invariants = map[string]invariant{
	"private default route":    privateDefaultRoute,
	"nat instance":             natInstance,
	"gateway endpoints":        gatewayEndpoints,
	"sqs endpoint":             sqsEndpoint,
	"efs mount targets":        efsMountTargets,
	"queue visibility and dlq": queueVisibility,
	"event source mappings":    eventSourceMappings,
	"table":                    table,
	"iam names its resources":  iamNamesResources,
	"function settings":        functionSettings,
	"buckets":                  buckets,
	"api":                      api,
	"graph is consistent":      graphConsistent,
}

func checkVariants(t *testing.T, name string) {
	t.Helper()
	for _, v := range Variants {
		t.Run(v.Name, func(t *testing.T) {
			w := build(t, v.Config)
			if err := invariants[name](w); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestPrivateDefaultRoute(t *testing.T)  { checkVariants(t, "private default route") }
func TestNATInstance(t *testing.T)          { checkVariants(t, "nat instance") }
func TestGatewayEndpoints(t *testing.T)     { checkVariants(t, "gateway endpoints") }
func TestSQSEndpoint(t *testing.T)          { checkVariants(t, "sqs endpoint") }
func TestEFSMountTargets(t *testing.T)      { checkVariants(t, "efs mount targets") }
func TestQueueVisibility(t *testing.T)      { checkVariants(t, "queue visibility and dlq") }
func TestEventSourceMappings(t *testing.T)  { checkVariants(t, "event source mappings") }
func TestTable(t *testing.T)                { checkVariants(t, "table") }
func TestIAMNamesItsResources(t *testing.T) { checkVariants(t, "iam names its resources") }
func TestFunctionSettings(t *testing.T)     { checkVariants(t, "function settings") }
func TestBuckets(t *testing.T)              { checkVariants(t, "buckets") }
func TestAPI(t *testing.T)                  { checkVariants(t, "api") }
func TestGraphIsConsistent(t *testing.T)    { checkVariants(t, "graph is consistent") }

// TestToggleCombinations builds every valid combination of the toggles
// and checks every invariant on each; invalid ones must fail to build.
func TestToggleCombinations(t *testing.T) {
	names := make([]string, 0, len(invariants))
	for n := range invariants {
		names = append(names, n)
	}
	sort.Strings(names)
	built := 0
	for _, efs := range []string{"false", "true"} {
		for _, egress := range []string{EgressNATInstance, EgressNATGateway, EgressNone} {
			for _, sqs := range []string{"true", "false"} {
				for _, mode := range []string{"s3", "efs", "efs-copy", "auto"} {
					cfg := map[string]string{"tally:efs": efs, "tally:egress": egress, "tally:sqsEndpoint": sqs, "tally:storageMode": mode}
					valid := (mode == "s3" || efs == "true") && !(egress == EgressNone && sqs == "false")
					w, err := tryBuild(cfg)
					if !valid {
						if err == nil {
							t.Errorf("%v: built, want a config error", cfg)
						}
						continue
					}
					if err != nil {
						t.Errorf("%v: %v", cfg, err)
						continue
					}
					built++
					for _, n := range names {
						if err := invariants[n](w); err != nil {
							t.Errorf("%v: %s: %v", cfg, n, err)
						}
					}
				}
			}
		}
	}
	if built != 25 {
		t.Errorf("built %d valid combinations, want 25", built)
	}
}

func privateDefaultRoute(w *world) error {
	var private []Registered
	for _, rt := range w.all("aws:ec2/routeTable:RouteTable") {
		if strings.HasPrefix(rt.Name, "rt-private") {
			private = append(private, rt)
		}
	}
	if len(private) == 0 {
		return fmt.Errorf("no private route table")
	}
	// Every private subnet is associated with a private table.
	privateIDs := map[string]bool{}
	for _, rt := range private {
		privateIDs[rt.ID] = true
	}
	for _, s := range w.cfg.PrivateSubnets {
		sub, _ := w.named("subnet-" + s.Role)
		found := false
		for _, a := range w.all("aws:ec2/routeTableAssociation:RouteTableAssociation") {
			if str(in(a, "subnetId")) == sub.ID {
				if !privateIDs[str(in(a, "routeTableId"))] {
					return fmt.Errorf("%s is associated with a non-private route table", s.Role)
				}
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s has no route table association", s.Role)
		}
	}
	nat, hasNAT := w.named("nat-instance")
	for _, rt := range private {
		var defaults []Registered
		for _, r := range w.all("aws:ec2/route:Route") {
			if str(in(r, "routeTableId")) == rt.ID && str(in(r, "destinationCidrBlock")) == "0.0.0.0/0" {
				defaults = append(defaults, r)
			}
		}
		switch w.cfg.Egress {
		case EgressNone:
			if len(defaults) != 0 {
				return fmt.Errorf("egress none: %s has a default route", rt.Name)
			}
		case EgressNATInstance:
			if !hasNAT {
				return fmt.Errorf("no NAT instance")
			}
			if len(defaults) != 1 {
				return fmt.Errorf("%s: %d default routes, want 1", rt.Name, len(defaults))
			}
			eni := out(nat, "primaryNetworkInterfaceId")
			if got := str(in(defaults[0], "networkInterfaceId")); got == "" || got != eni {
				return fmt.Errorf("%s default route → interface %q, want the NAT instance's primary interface %q", rt.Name, got, eni)
			}
			if in(defaults[0], "gatewayId") != nil || in(defaults[0], "natGatewayId") != nil {
				return fmt.Errorf("%s default route also names a gateway", rt.Name)
			}
		case EgressNATGateway:
			if len(defaults) != 1 {
				return fmt.Errorf("%s: %d default routes, want 1", rt.Name, len(defaults))
			}
			if _, ok := w.byID("aws:ec2/natGateway:NatGateway", str(in(defaults[0], "natGatewayId"))); !ok {
				return fmt.Errorf("%s default route → %v, not a NAT gateway", rt.Name, in(defaults[0], "natGatewayId"))
			}
		}
	}
	if w.cfg.Egress == EgressNATGateway {
		gws := w.all("aws:ec2/natGateway:NatGateway")
		zones := map[string]bool{}
		az := w.subnetAZ()
		for _, g := range gws {
			sub, _ := w.byID("aws:ec2/subnet:Subnet", str(in(g, "subnetId")))
			if !strings.HasPrefix(sub.Name, "subnet-public") {
				return fmt.Errorf("NAT gateway %s is not in a public subnet", g.Name)
			}
			zones[az[sub.ID]] = true
		}
		if len(gws) != len(zones) || len(zones) != w.cfg.NATGatewayCount() {
			return fmt.Errorf("%d NAT gateways in %d zones, want one per public zone (%d)", len(gws), len(zones), w.cfg.NATGatewayCount())
		}
	}
	return nil
}

func natInstance(w *world) error {
	insts := w.all("aws:ec2/instance:Instance")
	if w.cfg.Egress != EgressNATInstance {
		if len(insts) != 0 {
			return fmt.Errorf("egress %s: %d instances, want none", w.cfg.Egress, len(insts))
		}
		return nil
	}
	if len(insts) != 1 {
		return fmt.Errorf("%d instances, want 1", len(insts))
	}
	nat := insts[0]
	if got := str(in(nat, "instanceType")); got != "t4g.nano" {
		return fmt.Errorf("instance type %q, want t4g.nano", got)
	}
	if in(nat, "sourceDestCheck") != false {
		return fmt.Errorf("sourceDestCheck %v, want false", in(nat, "sourceDestCheck"))
	}
	// The AMI is the one the lookup returned, and the lookup asked for arm64.
	var lookup *Invoked
	for i, c := range w.calls {
		if c.Token == "aws:ec2/getAmi:getAmi" {
			lookup = &w.calls[i]
		}
	}
	if lookup == nil {
		return fmt.Errorf("no AMI lookup")
	}
	arm := false
	for _, f := range PlainMap(lookup.Args)["filters"].([]any) {
		f := f.(map[string]any)
		if f["name"] == "architecture" && slices.Equal(strs(f["values"]), []string{"arm64"}) {
			arm = true
		}
	}
	if !arm {
		return fmt.Errorf("AMI lookup %v does not filter on architecture arm64", PlainMap(lookup.Args))
	}
	if got := str(in(nat, "ami")); got != MockAMI {
		return fmt.Errorf("ami %q, want the looked-up %q", got, MockAMI)
	}
	sub, _ := w.byID("aws:ec2/subnet:Subnet", str(in(nat, "subnetId")))
	if !strings.HasPrefix(sub.Name, "subnet-public") {
		return fmt.Errorf("NAT instance in %q, want a public subnet", sub.Name)
	}
	ud := str(in(nat, "userData"))
	for _, want := range []string{"net.ipv4.ip_forward = 1", "/etc/sysctl.d/", "-j MASQUERADE", "iptables-save > /etc/sysconfig/iptables", "systemctl enable --now iptables", "iptables -F FORWARD"} {
		if !strings.Contains(ud, want) {
			return fmt.Errorf("user data lacks %q", want)
		}
	}
	eipOK := false
	for _, e := range w.all("aws:ec2/eip:Eip") {
		if str(in(e, "instance")) == nat.ID {
			eipOK = true
		}
	}
	if !eipOK {
		return fmt.Errorf("no Elastic IP on the NAT instance")
	}
	sg, _ := w.named("sg-nat")
	if got := strs(in(nat, "vpcSecurityGroupIds")); !slices.Equal(got, []string{sg.ID}) {
		return fmt.Errorf("NAT security groups %v, want [%s]", got, sg.ID)
	}
	rules, _ := in(sg, "ingress").([]any)
	var private []string
	for _, s := range w.cfg.PrivateSubnets {
		private = append(private, s.CIDR)
	}
	if len(rules) != 1 || !slices.Equal(strs(rules[0].(map[string]any)["cidrBlocks"]), private) || len(strs(rules[0].(map[string]any)["securityGroups"])) != 0 {
		return fmt.Errorf("NAT ingress %v, want all traffic from %v only", rules, private)
	}
	return nil
}

func gatewayEndpoints(w *world) error {
	var want []string
	for _, rt := range w.all("aws:ec2/routeTable:RouteTable") {
		want = append(want, rt.ID)
	}
	sort.Strings(want)
	if len(want) < 2 {
		return fmt.Errorf("route tables %v: want public and private", want)
	}
	for _, svc := range []string{"s3", "dynamodb"} {
		e, ok := w.named("vpce-" + svc)
		if !ok {
			return fmt.Errorf("no %s endpoint", svc)
		}
		if str(in(e, "vpcEndpointType")) != "Gateway" || str(in(e, "serviceName")) != "com.amazonaws.us-east-1."+svc {
			return fmt.Errorf("%s endpoint: %v", svc, PlainMap(e.Inputs))
		}
		got := strs(in(e, "routeTableIds"))
		sort.Strings(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s endpoint on %v, want every route table %v", svc, got, want)
		}
	}
	return nil
}

func sqsEndpoint(w *world) error {
	e, ok := w.named("vpce-sqs")
	if !w.cfg.SQSEndpoint {
		if ok {
			return fmt.Errorf("sqsEndpoint false but an SQS endpoint exists")
		}
		return nil
	}
	if !ok {
		return fmt.Errorf("no SQS endpoint")
	}
	if str(in(e, "vpcEndpointType")) != "Interface" || in(e, "privateDnsEnabled") != true {
		return fmt.Errorf("SQS endpoint type %v private DNS %v, want Interface with private DNS", in(e, "vpcEndpointType"), in(e, "privateDnsEnabled"))
	}
	vpc, _ := w.named("vpc")
	if in(vpc, "enableDnsHostnames") != true || in(vpc, "enableDnsSupport") != true {
		return fmt.Errorf("private DNS needs the VPC's DNS hostnames and support on")
	}
	sg, _ := w.named("sg-endpoint")
	if got := strs(in(e, "securityGroupIds")); !slices.Equal(got, []string{sg.ID}) {
		return fmt.Errorf("SQS endpoint security groups %v, want [%s]", got, sg.ID)
	}
	if err := w.onlyFromLambdaSG("sg-endpoint", 443); err != nil {
		return err
	}
	az := w.subnetAZ()
	seen := map[string]bool{}
	for _, id := range strs(in(e, "subnetIds")) {
		if seen[az[id]] {
			return fmt.Errorf("SQS endpoint has two subnets in %s (AWS allows one per zone)", az[id])
		}
		seen[az[id]] = true
	}
	if len(seen) == 0 {
		return fmt.Errorf("SQS endpoint has no subnets")
	}
	return nil
}

func efsMountTargets(w *world) error {
	mts := w.all("aws:efs/mountTarget:MountTarget")
	fs := w.all("aws:efs/fileSystem:FileSystem")
	if !w.cfg.EFS {
		if len(mts)+len(fs) != 0 {
			return fmt.Errorf("efs off but %d file systems and %d mount targets", len(fs), len(mts))
		}
		for _, role := range Roles {
			f, _ := w.fn(role)
			if in(f, "fileSystemConfig") != nil {
				return fmt.Errorf("efs off but %s mounts a file system", role)
			}
		}
		return nil
	}
	if len(fs) != 1 || in(fs[0], "encrypted") != true || str(in(fs[0], "throughputMode")) != "elastic" {
		return fmt.Errorf("want one encrypted elastic file system, got %d", len(fs))
	}
	az := w.subnetAZ()
	mounted := map[string]string{} // zone → mount target
	for _, mt := range mts {
		zone := az[str(in(mt, "subnetId"))]
		if prev, dup := mounted[zone]; dup {
			return fmt.Errorf("mount targets %s and %s are both in %s (EFS allows one per zone)", prev, mt.Name, zone)
		}
		mounted[zone] = mt.Name
		if str(in(mt, "fileSystemId")) != fs[0].ID {
			return fmt.Errorf("%s is on another file system", mt.Name)
		}
		sg, _ := w.named("sg-efs")
		if got := strs(in(mt, "securityGroups")); !slices.Equal(got, []string{sg.ID}) {
			return fmt.Errorf("%s security groups %v, want [%s]", mt.Name, got, sg.ID)
		}
	}
	if err := w.onlyFromLambdaSG("sg-efs", 2049); err != nil {
		return err
	}
	ap, _ := w.named("efs-access-point")
	if str(in(ap, "rootDirectory.path")) != "/chroma" || num(in(ap, "posixUser.uid")) != 1000 || num(in(ap, "posixUser.gid")) != 1000 ||
		str(in(ap, "rootDirectory.creationInfo.permissions")) != "0755" || num(in(ap, "rootDirectory.creationInfo.ownerUid")) != 1000 {
		return fmt.Errorf("access point %v", PlainMap(ap.Inputs))
	}
	users := 0
	for _, role := range Roles {
		f, _ := w.fn(role)
		if in(f, "fileSystemConfig") == nil {
			if w.cfg.UsesEFS(role) {
				return fmt.Errorf("%s should mount EFS", role)
			}
			continue
		}
		users++
		if str(in(f, "fileSystemConfig.arn")) != out(ap, "arn") || str(in(f, "fileSystemConfig.localMountPath")) != "/mnt/chroma" {
			return fmt.Errorf("%s file system config %v", role, in(f, "fileSystemConfig"))
		}
		if str(in(f, "environment.variables.TALLY_VECTOR_MOUNT")) != "/mnt/chroma" {
			return fmt.Errorf("%s has no TALLY_VECTOR_MOUNT", role)
		}
		for _, id := range strs(in(f, "vpcConfig.subnetIds")) {
			mt, ok := mounted[az[id]]
			if !ok {
				return fmt.Errorf("%s mounts EFS from subnet %s in %s, which has no mount target", role, id, az[id])
			}
			if !slices.Contains(f.Dependencies, mt) {
				return fmt.Errorf("%s does not wait for mount target %s", role, mt)
			}
		}
	}
	if users == 0 {
		return fmt.Errorf("efs on but no function mounts it")
	}
	return nil
}

func queueVisibility(w *world) error {
	queues := w.all("aws:sqs/queue:Queue")
	byName := map[string]Registered{}
	for _, q := range queues {
		byName[str(in(q, "name"))] = q
	}
	for _, name := range Queues {
		full := w.cfg.NamePrefix + name
		q, ok := byName[full]
		if !ok {
			return fmt.Errorf("no queue %s", full)
		}
		dlq, ok := byName[full+"-dlq"]
		if !ok {
			return fmt.Errorf("no dead-letter queue %s-dlq", full)
		}
		var rp struct {
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     int    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(str(in(q, "redrivePolicy"))), &rp); err != nil {
			return fmt.Errorf("%s redrive policy: %w", full, err)
		}
		if rp.DeadLetterTargetArn != out(dlq, "arn") || rp.MaxReceiveCount < 5 {
			return fmt.Errorf("%s redrive %+v, want %s after at least 5 receives", full, rp, out(dlq, "arn"))
		}
		if num(in(dlq, "messageRetentionSeconds")) != 14*24*3600 {
			return fmt.Errorf("%s-dlq retention %v, want 14 days", full, in(dlq, "messageRetentionSeconds"))
		}
	}
	// For every mapping, the queue's visibility covers six function timeouts.
	esms := w.all("aws:lambda/eventSourceMapping:EventSourceMapping")
	if len(esms) != 2 {
		return fmt.Errorf("%d event source mappings, want 2", len(esms))
	}
	for _, m := range esms {
		var q, f Registered
		for _, r := range queues {
			if out(r, "arn") == str(in(m, "eventSourceArn")) {
				q = r
			}
		}
		for _, r := range w.all("aws:lambda/function:Function") {
			if out(r, "arn") == str(in(m, "functionName")) {
				f = r
			}
		}
		if q.Name == "" || f.Name == "" {
			return fmt.Errorf("%s: queue or function not found", m.Name)
		}
		vis, timeout := num(in(q, "visibilityTimeoutSeconds")), num(in(f, "timeout"))
		if timeout < 1 || vis < 6*timeout {
			return fmt.Errorf("%s visibility %d s < 6 × %s timeout %d s", q.Name, vis, f.Name, timeout)
		}
	}
	return nil
}

func eventSourceMappings(w *world) error {
	q, _ := w.named("queue-ocr-results")
	f, _ := w.fn(RoleProcess)
	m, ok := w.named("esm-process")
	if !ok {
		return fmt.Errorf("no process mapping")
	}
	if str(in(m, "eventSourceArn")) != out(q, "arn") || str(in(m, "functionName")) != out(f, "arn") {
		return fmt.Errorf("process mapping %v, want ocr-results → process", PlainMap(m.Inputs))
	}
	if num(in(m, "batchSize")) != 10 || !slices.Equal(strs(in(m, "functionResponseTypes")), []string{"ReportBatchItemFailures"}) {
		return fmt.Errorf("process mapping batch %v types %v, want 10 and ReportBatchItemFailures", in(m, "batchSize"), in(m, "functionResponseTypes"))
	}
	cq, _ := w.named("queue-compaction")
	cf, _ := w.fn(RoleCompact)
	c, ok := w.named("esm-compact")
	if !ok || str(in(c, "eventSourceArn")) != out(cq, "arn") || str(in(c, "functionName")) != out(cf, "arn") {
		return fmt.Errorf("compact mapping missing or miswired")
	}
	if num(in(c, "batchSize")) != 100 || num(in(c, "maximumBatchingWindowInSeconds")) != 5 ||
		num(in(c, "scalingConfig.maximumConcurrency")) != 2 || !slices.Equal(strs(in(c, "functionResponseTypes")), []string{"ReportBatchItemFailures"}) {
		return fmt.Errorf("compact mapping %v", PlainMap(c.Inputs))
	}
	return nil
}

func table(w *world) error {
	ts := w.all("aws:dynamodb/table:Table")
	if len(ts) != 1 {
		return fmt.Errorf("%d tables, want 1", len(ts))
	}
	t := ts[0]
	if str(in(t, "hashKey")) != "PK" || str(in(t, "rangeKey")) != "SK" || str(in(t, "billingMode")) != "PAY_PER_REQUEST" {
		return fmt.Errorf("table keys/billing %v", PlainMap(t.Inputs))
	}
	attrs := map[string]string{}
	for _, a := range in(t, "attributes").([]any) {
		a := a.(map[string]any)
		attrs[str(a["name"])] = str(a["type"])
	}
	want := map[string]string{"PK": "S", "SK": "S", "TYPE": "S"}
	gsis := map[string][3]string{}
	for i := 1; i <= 4; i++ {
		pk, sk := fmt.Sprintf("GSI%dPK", i), fmt.Sprintf("GSI%dSK", i)
		want[pk], want[sk] = "S", "S"
		gsis[fmt.Sprintf("GSI%d", i)] = [3]string{pk, sk, "ALL"}
	}
	gsis["GSITYPE"] = [3]string{"TYPE", "", "ALL"}
	if fmt.Sprint(attrs) != fmt.Sprint(want) {
		return fmt.Errorf("attributes %v, want %v", attrs, want)
	}
	got := map[string][3]string{}
	for _, g := range in(t, "globalSecondaryIndexes").([]any) {
		g := g.(map[string]any)
		got[str(g["name"])] = [3]string{str(g["hashKey"]), str(g["rangeKey"]), str(g["projectionType"])}
	}
	if fmt.Sprint(got) != fmt.Sprint(gsis) {
		return fmt.Errorf("GSIs %v, want %v", got, gsis)
	}
	if str(in(t, "ttl.attributeName")) != "time_to_live" || in(t, "ttl.enabled") != true {
		return fmt.Errorf("ttl %v", in(t, "ttl"))
	}
	if in(t, "streamEnabled") != true || str(in(t, "streamViewType")) != "NEW_AND_OLD_IMAGES" || in(t, "pointInTimeRecovery.enabled") != true {
		return fmt.Errorf("stream %v/%v, point-in-time recovery %v", in(t, "streamEnabled"), in(t, "streamViewType"), in(t, "pointInTimeRecovery"))
	}
	return nil
}

// wantQueues is, per role, exactly the queues its policy may name (from
// the issue, independent of accessOf).
var wantQueues = map[string][]string{
	RoleProcess: {"compaction", "ocr-results", "ocr-results-dlq"},
	RoleCompact: {"compaction"},
	RoleUpload:  {"compaction", "ocr-jobs", "ocr-results"},
}

var wantBuckets = map[string][]string{
	RoleProcess: {"assets", "raw", "vectors"},
	RoleCompact: {"vectors"},
	RoleUpload:  {"raw", "vectors"},
}

func iamNamesResources(w *world) error {
	bucketOf := map[string]string{} // bucket ARN → role
	for _, b := range Buckets {
		r, _ := w.named("bucket-" + b)
		bucketOf[out(r, "arn")] = b
	}
	queueOf := map[string]string{}
	for _, q := range w.all("aws:sqs/queue:Queue") {
		queueOf[out(q, "arn")] = strings.TrimPrefix(str(in(q, "name")), w.cfg.NamePrefix)
	}
	tbl, _ := w.named("table")
	var fsArn string
	if fs, ok := w.named("efs"); ok {
		fsArn = out(fs, "arn")
	}
	for _, role := range Roles {
		doc, err := w.policy(role)
		if err != nil {
			return err
		}
		queues, bkts := map[string]bool{}, map[string]bool{}
		efs := false
		for _, s := range doc.Statement {
			for _, res := range s.Resource {
				switch {
				case strings.Contains(res, "*") && !strings.HasSuffix(res, "/*") && !strings.HasSuffix(res, "/index/*"):
					return fmt.Errorf("%s: resource %q is a wildcard", role, res)
				case queueOf[res] != "":
					queues[queueOf[res]] = true
				case bucketOf[res] != "":
					bkts[bucketOf[res]] = true
				case strings.HasSuffix(res, "/*") && bucketOf[strings.TrimSuffix(res, "/*")] != "":
					bkts[bucketOf[strings.TrimSuffix(res, "/*")]] = true
				case res == out(tbl, "arn") || res == out(tbl, "arn")+"/index/*":
				case fsArn != "" && res == fsArn:
					efs = true
					ap, _ := w.named("efs-access-point")
					if s.Condition["StringEquals"]["elasticfilesystem:AccessPointArn"] != out(ap, "arn") {
						return fmt.Errorf("%s: EFS grant not limited to the access point", role)
					}
				default:
					return fmt.Errorf("%s: resource %q names nothing this stack made", role, res)
				}
			}
		}
		if got := slices.Sorted(mapKeys(queues)); !slices.Equal(got, wantQueues[role]) {
			return fmt.Errorf("%s names queues %v, want exactly %v", role, got, wantQueues[role])
		}
		if got := slices.Sorted(mapKeys(bkts)); !slices.Equal(got, wantBuckets[role]) {
			return fmt.Errorf("%s names buckets %v, want exactly %v", role, got, wantBuckets[role])
		}
		if efs != w.cfg.UsesEFS(role) {
			return fmt.Errorf("%s EFS grant %v, uses EFS %v", role, efs, w.cfg.UsesEFS(role))
		}
		att, ok := w.named("role-" + role + "-vpc-access")
		if !ok || str(in(att, "policyArn")) != VPCAccessPolicy {
			return fmt.Errorf("%s lacks AWSLambdaVPCAccessExecutionRole", role)
		}
	}
	return nil
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// reservedEnv are names Lambda sets itself and refuses in a function's
// environment.
var reservedEnv = []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_RUNTIME_API", "_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}

func functionSettings(w *world) error {
	lambdaSG, _ := w.named("sg-lambda")
	private := map[string]bool{}
	for _, s := range w.cfg.PrivateSubnets {
		sub, _ := w.named("subnet-" + s.Role)
		private[sub.ID] = true
	}
	q := func(n string) string { r, _ := w.named("queue-" + n); return out(r, "url") }
	b := func(n string) string { r, _ := w.named("bucket-" + n); return "s3://" + out(r, "bucket") }
	for _, role := range Roles {
		f, ok := w.fn(role)
		if !ok {
			return fmt.Errorf("no %s function", role)
		}
		fc := w.cfg.Functions[role]
		if str(in(f, "runtime")) != "provided.al2023" || !slices.Equal(strs(in(f, "architectures")), []string{"arm64"}) || str(in(f, "handler")) != role {
			return fmt.Errorf("%s runtime %v arch %v handler %v", role, in(f, "runtime"), in(f, "architectures"), in(f, "handler"))
		}
		if code, _ := in(f, "code").(map[string]any); code["archive"] != "../dist/"+role+".zip" {
			return fmt.Errorf("%s code %v, want ../dist/%s.zip", role, in(f, "code"), role)
		}
		if num(in(f, "timeout")) != fc.Timeout || num(in(f, "memorySize")) != fc.Memory || num(in(f, "ephemeralStorage.size")) != fc.EphemeralStorage {
			return fmt.Errorf("%s sizes %v/%v/%v, want %+v", role, in(f, "timeout"), in(f, "memorySize"), in(f, "ephemeralStorage"), fc)
		}
		if !slices.Equal(strs(in(f, "vpcConfig.securityGroupIds")), []string{lambdaSG.ID}) {
			return fmt.Errorf("%s security groups %v", role, in(f, "vpcConfig.securityGroupIds"))
		}
		for _, id := range strs(in(f, "vpcConfig.subnetIds")) {
			if !private[id] {
				return fmt.Errorf("%s runs in non-private subnet %s", role, id)
			}
		}
		env, _ := in(f, "environment.variables").(map[string]any)
		want := map[string]string{
			"TALLY_ROLE":                  role,
			"TALLY_QUEUE_URL":             "sqs://tally-dev-",
			"TALLY_OCR_JOBS_QUEUE_URL":    q("ocr-jobs"),
			"TALLY_OCR_RESULTS_QUEUE_URL": q("ocr-results"),
			"TALLY_COMPACTION_QUEUE_URL":  q("compaction"),
			"TALLY_BLOB_URL":              b("raw"),
			"TALLY_ASSETS_BLOB_URL":       b("assets"),
			"TALLY_VECTOR_BLOB_URL":       b("vectors"),
			"TALLY_ITEMS_URL":             "dynamodb://tally-dev-items",
			"TALLY_EMBEDDER_URL":          "hashed://512",
			"TALLY_VECTOR_MODE":           w.cfg.VectorMode(role),
		}
		for k, v := range want {
			if got := str(env[k]); got != v || v == "" || v == "s3://" {
				return fmt.Errorf("%s env %s = %q, want %q", role, k, got, v)
			}
		}
		if _, ok := env["TALLY_VECTOR_MOUNT"]; ok != w.cfg.UsesEFS(role) {
			return fmt.Errorf("%s TALLY_VECTOR_MOUNT set %v, uses EFS %v", role, ok, w.cfg.UsesEFS(role))
		}
		for _, k := range reservedEnv {
			if _, ok := env[k]; ok {
				return fmt.Errorf("%s sets reserved variable %s", role, k)
			}
		}
		if !slices.Contains(f.Dependencies, "role-"+role+"-policy") {
			return fmt.Errorf("%s does not wait for its policy", role)
		}
	}
	return nil
}

func buckets(w *world) error {
	for _, b := range Buckets {
		bucket, ok := w.named("bucket-" + b)
		if !ok {
			return fmt.Errorf("no %s bucket", b)
		}
		id := bucket.ID
		pab, _ := w.named("bucket-" + b + "-public-access")
		for _, k := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
			if str(in(pab, "bucket")) != id || in(pab, k) != true {
				return fmt.Errorf("%s bucket: public access %s not blocked", b, k)
			}
		}
		enc, _ := w.named("bucket-" + b + "-encryption")
		rules, _ := in(enc, "rules").([]any)
		if str(in(enc, "bucket")) != id || len(rules) != 1 || rules[0].(map[string]any)["applyServerSideEncryptionByDefault"] == nil {
			return fmt.Errorf("%s bucket: no default encryption", b)
		}
		lc, _ := w.named("bucket-" + b + "-lifecycle")
		abort, deltas := 0, map[string]int{}
		noncurrent := 0
		for _, r := range in(lc, "rules").([]any) {
			r := r.(map[string]any)
			if a, ok := r["abortIncompleteMultipartUpload"].(map[string]any); ok {
				abort = num(a["daysAfterInitiation"])
			}
			if n, ok := r["noncurrentVersionExpiration"].(map[string]any); ok {
				noncurrent = num(n["noncurrentDays"])
			}
			if e, ok := r["expiration"].(map[string]any); ok && e["days"] != nil {
				deltas[str(r["filter"].(map[string]any)["prefix"])] = num(e["days"])
			}
		}
		if abort < 1 || abort > 7 {
			return fmt.Errorf("%s bucket: abort multipart after %d days, want 1–7", b, abort)
		}
		if b != BucketVectors {
			if len(deltas) != 0 || noncurrent != 0 {
				return fmt.Errorf("%s bucket expires objects: %v", b, deltas)
			}
			continue
		}
		ver, _ := w.named("bucket-vectors-versioning")
		if str(in(ver, "bucket")) != id || str(in(ver, "versioningConfiguration.status")) != "Enabled" || noncurrent < 1 {
			return fmt.Errorf("vectors bucket: versioning %v, noncurrent expiry %d", in(ver, "versioningConfiguration"), noncurrent)
		}
		// The delta rule must catch the keys Tally really writes
		// (vector/store.go: {coll}/deltas/{run}.seg), and nothing else.
		for _, key := range []string{"lines/deltas/run-1.seg", "words/deltas/run-2.seg"} {
			hit := false
			for prefix, days := range deltas {
				if strings.HasPrefix(key, prefix) {
					hit = true
					if days < 7 {
						return fmt.Errorf("deltas under %s expire after %d days, want a long safety period", prefix, days)
					}
				}
			}
			if !hit {
				return fmt.Errorf("no lifecycle rule matches delta key %s (rules %v)", key, deltas)
			}
		}
		for _, key := range []string{"lines/segments/s1.seg", "words/versions/0000000001-ab.json"} {
			for prefix := range deltas {
				if strings.HasPrefix(key, prefix) {
					return fmt.Errorf("delta rule %s would expire %s", prefix, key)
				}
			}
		}
	}
	return nil
}

func api(w *world) error {
	apis := w.all("aws:apigatewayv2/api:Api")
	if len(apis) != 1 || str(in(apis[0], "protocolType")) != "HTTP" {
		return fmt.Errorf("want one HTTP API")
	}
	a := apis[0]
	up, _ := w.fn(RoleUpload)
	integ, _ := w.named("api-upload")
	if str(in(integ, "integrationType")) != "AWS_PROXY" || str(in(integ, "payloadFormatVersion")) != "2.0" || str(in(integ, "integrationUri")) != out(up, "invokeArn") {
		return fmt.Errorf("integration %v", PlainMap(integ.Inputs))
	}
	var routes []string
	for _, r := range w.all("aws:apigatewayv2/route:Route") {
		if str(in(r, "apiId")) != a.ID || str(in(r, "target")) != "integrations/"+integ.ID {
			return fmt.Errorf("route %s not wired to the upload integration", r.Name)
		}
		routes = append(routes, str(in(r, "routeKey")))
	}
	sort.Strings(routes)
	want := []string{"GET /healthz", "GET /images/{id}", "GET /search", "GET /upload-status", "POST /ocr-results", "POST /receipts", "POST /upload-receipt"}
	if !slices.Equal(routes, want) {
		return fmt.Errorf("routes %v, want %v", routes, want)
	}
	st, _ := w.named("api-default")
	if str(in(st, "name")) != "$default" || in(st, "autoDeploy") != true {
		return fmt.Errorf("stage %v", PlainMap(st.Inputs))
	}
	p, _ := w.named("api-invoke-upload")
	if str(in(p, "principal")) != "apigateway.amazonaws.com" || str(in(p, "function")) != str(in(up, "name")) ||
		str(in(p, "sourceArn")) != out(a, "executionArn")+"/*/*" {
		return fmt.Errorf("permission %v", PlainMap(p.Inputs))
	}
	return nil
}

// refRE matches values only the mocks invent: ids, ARNs and URLs of the
// mock account, S3 ARNs.
var refRE = regexp.MustCompile(`(-id$|:` + MockAccount + `:|^arn:aws:s3:::|^https://sqs\.)`)

// graphConsistent: names are unique, every dependency is registered, and
// every id/ARN/URL in any input (policies included) is an output of a
// registered resource.
func graphConsistent(w *world) error {
	known := map[string]bool{}
	names := map[string]bool{}
	for _, r := range w.res {
		if names[r.Name] {
			return fmt.Errorf("duplicate resource name %s", r.Name)
		}
		names[r.Name] = true
		for _, v := range r.Outputs {
			if v.IsString() {
				known[v.StringValue()] = true
			}
		}
	}
	physical := map[string]string{}
	for _, r := range w.res {
		for _, d := range r.Dependencies {
			if !names[d] {
				return fmt.Errorf("%s depends on unregistered %s", r.Name, d)
			}
		}
		for _, k := range []string{"name", "bucketPrefix"} {
			if n := str(in(r, k)); n != "" && strings.HasPrefix(r.Type, "aws:") {
				key := r.Type + " " + n
				if prev, dup := physical[key]; dup {
					return fmt.Errorf("%s and %s share the name %s", prev, r.Name, n)
				}
				physical[key] = r.Name
			}
		}
		var walk func(path string, v any) error
		walk = func(path string, v any) error {
			switch v := v.(type) {
			case map[string]any:
				for k, e := range v {
					if err := walk(path+"."+k, e); err != nil {
						return err
					}
				}
			case []any:
				for i, e := range v {
					if err := walk(fmt.Sprintf("%s[%d]", path, i), e); err != nil {
						return err
					}
				}
			case string:
				if strings.HasPrefix(v, "{") {
					var doc any
					if json.Unmarshal([]byte(v), &doc) == nil {
						return walk(path, doc)
					}
				}
				ref := v
				for _, p := range []string{"s3://", "integrations/"} {
					ref = strings.TrimPrefix(ref, p)
				}
				for _, s := range []string{"/*/*", "/index/*", "/*"} {
					ref = strings.TrimSuffix(ref, s)
				}
				if strings.HasPrefix(v, "s3://") || strings.HasPrefix(v, "integrations/") || refRE.MatchString(ref) {
					if strings.Contains(ref, "lambda:path/2015-03-31/functions/") {
						// an invoke ARN is itself an output
						ref = v
					}
					if !known[ref] {
						return fmt.Errorf("%s%s = %q refers to nothing registered", r.Name, path, v)
					}
				}
			}
			return nil
		}
		if err := walk("", PlainMap(r.Inputs)); err != nil {
			return err
		}
	}
	return nil
}
