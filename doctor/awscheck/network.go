package awscheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	efstypes "github.com/aws/aws-sdk-go-v2/service/efs/types"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/tallyhq/tally/doctor"
)

// LambdaENIDescription starts the description Lambda gives the Hyperplane
// ENIs it creates for VPC functions ("AWS Lambda VPC ENI-<function>-<id>").
const LambdaENIDescription = "AWS Lambda VPC ENI"

// NFSPort is the port EFS mount targets serve NFS on.
const NFSPort = 2049

// network checks that a VPC function's ENIs exist. Lambda creates one
// Hyperplane ENI per subnet and security-group combination and shares it
// among every function with that combination, so the ENI's description
// may name another function: an ENI serves this function when it is in
// one of the function's subnets, carries exactly the function's security
// groups, and is Lambda's (interface type "lambda", or, where the type is
// not reported, a description starting with LambdaENIDescription). The
// subnet and group filters run in EC2; the rest here, since EC2's
// "interface-type" filter is not universally supported (moto lacks it).
func (c *checker) network(ctx context.Context, check string, fn *lambdatypes.FunctionConfiguration) doctor.Check {
	check += " network"
	vpc := fn.VpcConfig
	if vpc == nil || len(vpc.SubnetIds) == 0 {
		return doctor.Check{Name: check, Status: doctor.OK, Detail: "not in a VPC: no ENIs needed"}
	}
	subnets, groups := vpc.SubnetIds, vpc.SecurityGroupIds
	found := map[string][]string{} // subnet → ENI IDs
	p := ec2.NewDescribeNetworkInterfacesPaginator(c.ec2, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{
		{Name: aws.String("subnet-id"), Values: subnets},
		{Name: aws.String("group-id"), Values: groups},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return callFailed(check, err)
		}
		for _, ni := range page.NetworkInterfaces {
			if isLambdaENI(ni) && sameGroups(ni.Groups, groups) {
				s := aws.ToString(ni.SubnetId)
				found[s] = append(found[s], aws.ToString(ni.NetworkInterfaceId))
			}
		}
	}
	var missing, enis []string
	for _, s := range subnets {
		if len(found[s]) == 0 {
			missing = append(missing, s)
		}
		enis = append(enis, found[s]...)
	}
	data := map[string]any{"subnets": subnets, "security_groups": groups, "enis": enis, "subnets_without_eni": missing}
	where := fmt.Sprintf("subnets %s, security groups %s", strings.Join(subnets, ","), strings.Join(groups, ","))
	if len(missing) == 0 {
		return doctor.Check{Name: check, Status: doctor.OK, Data: data,
			Detail: fmt.Sprintf("ENIs %s in %s", strings.Join(enis, ","), where)}
	}
	detail := fmt.Sprintf("no Lambda ENI in subnets %s (%s): the function cannot reach the VPC there",
		strings.Join(missing, ","), where)
	if len(enis) == 0 {
		detail = fmt.Sprintf("in a VPC (%s) but no Lambda ENI exists: it cannot start", where)
	}
	// Re-applying the VPC configuration makes Lambda create the ENIs
	// again (its execution role needs ec2:CreateNetworkInterface, granted
	// by AWSLambdaVPCAccessExecutionRole).
	return doctor.Check{Name: check, Status: doctor.Problem, Data: data, Detail: detail,
		Fix: fmt.Sprintf("aws lambda update-function-configuration --function-name %s --vpc-config SubnetIds=%s,SecurityGroupIds=%s",
			aws.ToString(fn.FunctionName), strings.Join(subnets, ","), strings.Join(groups, ","))}
}

func isLambdaENI(ni ec2types.NetworkInterface) bool {
	return ni.InterfaceType == ec2types.NetworkInterfaceTypeLambda ||
		strings.HasPrefix(aws.ToString(ni.Description), LambdaENIDescription)
}

// sameGroups reports whether an ENI carries exactly the given groups.
func sameGroups(have []ec2types.GroupIdentifier, want []string) bool {
	ids := make([]string, 0, len(have))
	for _, g := range have {
		ids = append(ids, aws.ToString(g.GroupId))
	}
	slices.Sort(ids)
	w := slices.Sorted(slices.Values(want))
	return slices.Equal(slices.Compact(ids), slices.Compact(w))
}

// fileSystems checks, for each EFS access point the function mounts, that
// every zone the function runs in has an available mount target and that
// the mount targets' security groups admit NFS from the function. Either
// failing makes the mount hang at init until the init timeout.
func (c *checker) fileSystems(ctx context.Context, check string, fn *lambdatypes.FunctionConfiguration) []doctor.Check {
	var out []doctor.Check
	for _, fsc := range fn.FileSystemConfigs {
		out = append(out, c.fileSystem(ctx, check, fn, aws.ToString(fsc.Arn))...)
	}
	return out
}

func (c *checker) fileSystem(ctx context.Context, check string, fn *lambdatypes.FunctionConfiguration, apARN string) []doctor.Check {
	apCheck := check + " efs " + apARN
	a, err := arn.Parse(apARN)
	apID, ok := strings.CutPrefix(a.Resource, "access-point/")
	if err != nil || !ok {
		return []doctor.Check{{Name: apCheck, Status: doctor.Problem,
			Detail: "file system config " + apARN + " is not an EFS access point ARN", Fix: "cd infra && pulumi up"}}
	}
	apCheck = check + " efs " + apID
	aps, err := c.efs.DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{AccessPointId: aws.String(apID)})
	var apMissing *efstypes.AccessPointNotFound
	switch {
	case errors.As(err, &apMissing):
		return []doctor.Check{{Name: apCheck, Status: doctor.Problem,
			Detail: "access point " + apID + " does not exist: the mount fails at init", Fix: "cd infra && pulumi up"}}
	case err != nil:
		return []doctor.Check{callFailed(apCheck, err)}
	case len(aps.AccessPoints) == 0:
		return []doctor.Check{{Name: apCheck, Status: doctor.Problem,
			Detail: "access point " + apID + " does not exist: the mount fails at init", Fix: "cd infra && pulumi up"}}
	}
	ap := aps.AccessPoints[0]
	fsID := aws.ToString(ap.FileSystemId)
	if ap.LifeCycleState != efstypes.LifeCycleStateAvailable {
		return []doctor.Check{{Name: apCheck, Status: doctor.Problem,
			Detail: fmt.Sprintf("access point %s of %s is %s, not available", apID, fsID, ap.LifeCycleState)}}
	}

	mtCheck := check + " efs " + fsID + " mount targets"
	var mts []efstypes.MountTargetDescription
	p := efs.NewDescribeMountTargetsPaginator(c.efs, &efs.DescribeMountTargetsInput{FileSystemId: aws.String(fsID)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return []doctor.Check{callFailed(mtCheck, err)}
		}
		mts = append(mts, page.MountTargets...)
	}
	var fnSubnets, fnGroups []string
	if fn.VpcConfig != nil {
		fnSubnets, fnGroups = fn.VpcConfig.SubnetIds, fn.VpcConfig.SecurityGroupIds
	}
	if len(fnSubnets) == 0 {
		return []doctor.Check{{Name: mtCheck, Status: doctor.Problem,
			Detail: "the function mounts EFS but is not in a VPC, so it cannot reach a mount target", Fix: "cd infra && pulumi up"}}
	}
	sn, err := c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: fnSubnets})
	if err != nil {
		return []doctor.Check{callFailed(mtCheck, err)}
	}

	// Every zone the function runs in needs an available mount target:
	// Lambda mounts through the one in its own zone.
	var zones []string
	zoneSubnet := map[string]string{}
	var cidrs []netip.Prefix
	for _, s := range sn.Subnets {
		z := aws.ToString(s.AvailabilityZone)
		if _, seen := zoneSubnet[z]; !seen {
			zones = append(zones, z)
			zoneSubnet[z] = aws.ToString(s.SubnetId)
		}
		if pfx, err := netip.ParsePrefix(aws.ToString(s.CidrBlock)); err == nil {
			cidrs = append(cidrs, pfx.Masked())
		}
	}
	slices.Sort(zones)
	byZone := map[string]efstypes.MountTargetDescription{}
	var mtGroupsHint []string // the security groups to give a new mount target: an existing one's
	for _, mt := range mts {
		byZone[aws.ToString(mt.AvailabilityZoneName)] = mt
	}
	var missing, notReady, fixes []string
	var inZone []efstypes.MountTargetDescription
	for _, z := range zones {
		mt, ok := byZone[z]
		switch {
		case !ok:
			missing = append(missing, z)
		case mt.LifeCycleState != efstypes.LifeCycleStateAvailable:
			notReady = append(notReady, fmt.Sprintf("%s in %s is %s", aws.ToString(mt.MountTargetId), z, mt.LifeCycleState))
		default:
			inZone = append(inZone, mt)
		}
	}

	// The NFS check reads the in-zone mount targets' security groups; its
	// groups also seed the create-mount-target fix.
	var nfs []doctor.Check
	if len(inZone) > 0 {
		var c2 doctor.Check
		c2, mtGroupsHint = c.nfsAccess(ctx, check+" efs "+fsID+" nfs", inZone, fnGroups, cidrs)
		nfs = append(nfs, c2)
	}

	if len(missing) > 0 && len(mtGroupsHint) == 0 && len(mts) > 0 {
		// No mount target in the function's zones to copy groups from: take
		// another zone's. Best effort; the fix is still right without them.
		if out, err := c.efs.DescribeMountTargetSecurityGroups(ctx, &efs.DescribeMountTargetSecurityGroupsInput{MountTargetId: mts[0].MountTargetId}); err == nil {
			mtGroupsHint = out.SecurityGroups
		}
	}

	data := map[string]any{"file_system_id": fsID, "access_point_id": apID, "function_zones": zones,
		"zones_without_mount_target": missing}
	mtc := doctor.Check{Name: mtCheck, Data: data}
	if len(missing) == 0 && len(notReady) == 0 {
		mtc.Status = doctor.OK
		mtc.Detail = fmt.Sprintf("available mount targets in every function zone (%s)", strings.Join(zones, ","))
		return append([]doctor.Check{mtc}, nfs...)
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("no mount target in zone %s, where the function runs: its EFS mount hangs until the init timeout",
			strings.Join(missing, ",")))
		for _, z := range missing {
			fix := fmt.Sprintf("aws efs create-mount-target --file-system-id %s --subnet-id %s", fsID, zoneSubnet[z])
			if len(mtGroupsHint) > 0 {
				fix += " --security-groups " + strings.Join(mtGroupsHint, " ")
			}
			fixes = append(fixes, fix)
		}
	}
	if len(notReady) > 0 {
		problems = append(problems, "mount target not available: "+strings.Join(notReady, ", "))
	}
	mtc.Status = doctor.Problem
	mtc.Detail = strings.Join(problems, "; ")
	mtc.Fix = strings.Join(fixes, "\n")
	return append([]doctor.Check{mtc}, nfs...)
}

// nfsAccess checks that each mount target has a security group admitting
// TCP 2049 from the function: by a rule naming one of the function's
// groups, or by CIDR ranges covering all the function's subnets. It also
// returns the mount targets' groups, for the create-mount-target fix.
func (c *checker) nfsAccess(ctx context.Context, check string, mts []efstypes.MountTargetDescription, fnGroups []string, fnCIDRs []netip.Prefix) (doctor.Check, []string) {
	mtGroups := map[string][]string{}
	var all []string
	for _, mt := range mts {
		id := aws.ToString(mt.MountTargetId)
		out, err := c.efs.DescribeMountTargetSecurityGroups(ctx, &efs.DescribeMountTargetSecurityGroupsInput{MountTargetId: mt.MountTargetId})
		if err != nil {
			return callFailed(check, err), nil
		}
		mtGroups[id] = out.SecurityGroups
		for _, g := range out.SecurityGroups {
			if !slices.Contains(all, g) {
				all = append(all, g)
			}
		}
	}
	rules := map[string]ec2types.SecurityGroup{}
	if len(all) > 0 {
		out, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: all})
		if err != nil {
			return callFailed(check, err), all
		}
		for _, g := range out.SecurityGroups {
			rules[aws.ToString(g.GroupId)] = g
		}
	}
	var blocked, fixes []string
	fixed := map[string]bool{}
	for _, mt := range mts {
		id := aws.ToString(mt.MountTargetId)
		if slices.ContainsFunc(mtGroups[id], func(g string) bool { return admitsNFS(rules[g], fnGroups, fnCIDRs) }) {
			continue
		}
		blocked = append(blocked, fmt.Sprintf("%s (%s, groups %s)", id, aws.ToString(mt.AvailabilityZoneName), strings.Join(mtGroups[id], ",")))
		if len(mtGroups[id]) > 0 && len(fnGroups) > 0 && !fixed[mtGroups[id][0]] {
			fixed[mtGroups[id][0]] = true
			fixes = append(fixes, fmt.Sprintf("aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port %d --source-group %s",
				mtGroups[id][0], NFSPort, fnGroups[0]))
		}
	}
	data := map[string]any{"mount_target_groups": mtGroups, "function_groups": fnGroups}
	if len(blocked) > 0 {
		return doctor.Check{Name: check, Status: doctor.Problem, Data: data,
			Detail: fmt.Sprintf("no security group of mount target %s admits TCP %d from the function's groups %s: the mount hangs until the init timeout",
				strings.Join(blocked, "; "), NFSPort, strings.Join(fnGroups, ",")),
			Fix: strings.Join(fixes, "\n")}, all
	}
	return doctor.Check{Name: check, Status: doctor.OK, Data: data,
		Detail: fmt.Sprintf("every mount target in the function's zones admits TCP %d from %s", NFSPort, strings.Join(fnGroups, ","))}, all
}

// admitsNFS reports whether a security group's ingress rules let the
// function reach TCP 2049.
func admitsNFS(g ec2types.SecurityGroup, fnGroups []string, fnCIDRs []netip.Prefix) bool {
	covered := make([]bool, len(fnCIDRs))
	for _, p := range g.IpPermissions {
		if !rulePortsNFS(p) {
			continue
		}
		for _, pair := range p.UserIdGroupPairs {
			if slices.Contains(fnGroups, aws.ToString(pair.GroupId)) {
				return true
			}
		}
		for _, r := range p.IpRanges {
			rng, err := netip.ParsePrefix(aws.ToString(r.CidrIp))
			if err != nil {
				continue
			}
			rng = rng.Masked()
			for i, s := range fnCIDRs {
				if rng.Bits() <= s.Bits() && rng.Contains(s.Addr()) {
					covered[i] = true
				}
			}
		}
	}
	return len(fnCIDRs) > 0 && !slices.Contains(covered, false)
}

// rulePortsNFS reports whether an ingress rule covers TCP 2049: protocol
// tcp (or its number, 6) with a port range holding 2049, or all traffic.
func rulePortsNFS(p ec2types.IpPermission) bool {
	switch aws.ToString(p.IpProtocol) {
	case "-1", "all":
		return true
	case "tcp", "6":
		return aws.ToInt32(p.FromPort) <= NFSPort && NFSPort <= aws.ToInt32(p.ToPort)
	}
	return false
}
