package program

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// network is the VPC of the seed's diagram: public subnets with an
// internet gateway, private subnets whose default route leaves through a
// NAT, gateway endpoints for S3 and DynamoDB, an SQS interface endpoint.
type network struct {
	vpc        *ec2.Vpc
	subnets    map[string]*ec2.Subnet // by role: public1, private2…
	publicRT   *ec2.RouteTable
	privateRTs []*ec2.RouteTable
	sgLambda   *ec2.SecurityGroup
	sgEndpoint *ec2.SecurityGroup
	sgEFS      *ec2.SecurityGroup
}

// natAMIFilter finds the newest Amazon Linux 2023 arm64 image (standard,
// not minimal: it has dnf and systemd units the user data relies on).
var natAMIFilter = ec2.LookupAmiArgs{
	MostRecent: pulumi.BoolRef(true),
	Owners:     []string{"amazon"},
	Filters: []ec2.GetAmiFilter{
		{Name: "name", Values: []string{"al2023-ami-2023.*-kernel-*-arm64"}},
		{Name: "architecture", Values: []string{"arm64"}},
		{Name: "virtualization-type", Values: []string{"hvm"}},
	},
}

// natUserData turns an Amazon Linux 2023 instance into a NAT: forwarding on
// and MASQUERADE out of its primary interface, both persisted (sysctl.d
// and the iptables service) so that a reboot keeps the private subnets
// online. AL2023 ships without iptables, and the iptables service's stock
// rules REJECT forwarded packets, hence the install and the flush.
const natUserData = `#!/bin/bash
set -euxo pipefail
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-tally-nat.conf
sysctl -p /etc/sysctl.d/90-tally-nat.conf
for i in 1 2 3 4 5 6 7 8 9 10; do dnf install -y iptables-services && break; sleep 10; done
IFACE=$(ip -4 route show default | awk '{print $5; exit}')
iptables -F FORWARD
iptables -t nat -F POSTROUTING
iptables -t nat -A POSTROUTING -o "$IFACE" -j MASQUERADE
iptables -A FORWARD -j ACCEPT
iptables-save > /etc/sysconfig/iptables
systemctl enable --now iptables
`

func newNetwork(ctx *pulumi.Context, c *Config) (*network, error) {
	n := &network{subnets: map[string]*ec2.Subnet{}}
	var err error
	// Private DNS on the SQS endpoint needs both DNS attributes.
	n.vpc, err = ec2.NewVpc(ctx, "vpc", &ec2.VpcArgs{
		CidrBlock:          pulumi.String(c.VPCCIDR),
		EnableDnsHostnames: pulumi.Bool(true),
		EnableDnsSupport:   pulumi.Bool(true),
		Tags:               tags(c, "vpc"),
	})
	if err != nil {
		return nil, fmt.Errorf("vpc: %w", err)
	}
	igw, err := ec2.NewInternetGateway(ctx, "igw", &ec2.InternetGatewayArgs{VpcId: n.vpc.ID(), Tags: tags(c, "igw")})
	if err != nil {
		return nil, fmt.Errorf("internet gateway: %w", err)
	}
	for _, s := range c.subnets() {
		sub, err := ec2.NewSubnet(ctx, "subnet-"+s.Role, &ec2.SubnetArgs{
			VpcId:            n.vpc.ID(),
			CidrBlock:        pulumi.String(s.CIDR),
			AvailabilityZone: pulumi.String(s.AZ),
			Tags:             tags(c, s.Role),
		})
		if err != nil {
			return nil, fmt.Errorf("subnet %s: %w", s.Role, err)
		}
		n.subnets[s.Role] = sub
	}

	n.publicRT, err = ec2.NewRouteTable(ctx, "rt-public", &ec2.RouteTableArgs{VpcId: n.vpc.ID(), Tags: tags(c, "public")})
	if err != nil {
		return nil, fmt.Errorf("public route table: %w", err)
	}
	if _, err := ec2.NewRoute(ctx, "route-public-default", &ec2.RouteArgs{
		RouteTableId:         n.publicRT.ID(),
		DestinationCidrBlock: pulumi.String("0.0.0.0/0"),
		GatewayId:            igw.ID(),
	}); err != nil {
		return nil, fmt.Errorf("public default route: %w", err)
	}
	for _, s := range c.PublicSubnets {
		if _, err := ec2.NewRouteTableAssociation(ctx, "rta-"+s.Role, &ec2.RouteTableAssociationArgs{
			SubnetId: n.subnets[s.Role].ID(), RouteTableId: n.publicRT.ID(),
		}); err != nil {
			return nil, fmt.Errorf("route table association %s: %w", s.Role, err)
		}
	}

	if err := n.securityGroups(ctx, c); err != nil {
		return nil, err
	}
	if err := n.privateRouting(ctx, c); err != nil {
		return nil, err
	}
	if err := n.endpoints(ctx, c); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *network) securityGroups(ctx *pulumi.Context, c *Config) error {
	allOut := ec2.SecurityGroupEgressArray{ec2.SecurityGroupEgressArgs{
		Protocol: pulumi.String("-1"), FromPort: pulumi.Int(0), ToPort: pulumi.Int(0),
		CidrBlocks: pulumi.StringArray{pulumi.String("0.0.0.0/0")},
	}}
	var err error
	// The Lambda ENIs accept nothing; they only call out.
	n.sgLambda, err = ec2.NewSecurityGroup(ctx, "sg-lambda", &ec2.SecurityGroupArgs{
		VpcId:       n.vpc.ID(),
		Description: pulumi.String("Tally Lambda functions: egress only"),
		Egress:      allOut,
		Tags:        tags(c, "lambda"),
	})
	if err != nil {
		return fmt.Errorf("lambda security group: %w", err)
	}
	fromLambda := func(port int, what string) ec2.SecurityGroupIngressArray {
		return ec2.SecurityGroupIngressArray{ec2.SecurityGroupIngressArgs{
			Description:    pulumi.String(what + " from the Lambda functions only"),
			Protocol:       pulumi.String("tcp"),
			FromPort:       pulumi.Int(port),
			ToPort:         pulumi.Int(port),
			SecurityGroups: pulumi.StringArray{n.sgLambda.ID()},
		}}
	}
	if c.SQSEndpoint {
		n.sgEndpoint, err = ec2.NewSecurityGroup(ctx, "sg-endpoint", &ec2.SecurityGroupArgs{
			VpcId:       n.vpc.ID(),
			Description: pulumi.String("Tally interface endpoints: HTTPS from the Lambda functions"),
			Ingress:     fromLambda(443, "HTTPS"),
			Tags:        tags(c, "endpoint"),
		})
		if err != nil {
			return fmt.Errorf("endpoint security group: %w", err)
		}
	}
	if c.EFS {
		n.sgEFS, err = ec2.NewSecurityGroup(ctx, "sg-efs", &ec2.SecurityGroupArgs{
			VpcId:       n.vpc.ID(),
			Description: pulumi.String("Tally EFS mount targets: NFS from the Lambda functions"),
			Ingress:     fromLambda(2049, "NFS"),
			Tags:        tags(c, "efs"),
		})
		if err != nil {
			return fmt.Errorf("efs security group: %w", err)
		}
	}
	return nil
}

// privateRouting gives the private subnets their route tables and default
// route: one table through the NAT instance (the seed), one table per
// zone through that zone's NAT gateway, or no default route at all.
func (n *network) privateRouting(ctx *pulumi.Context, c *Config) error {
	associate := func(rt *ec2.RouteTable, s Subnet) error {
		_, err := ec2.NewRouteTableAssociation(ctx, "rta-"+s.Role, &ec2.RouteTableAssociationArgs{
			SubnetId: n.subnets[s.Role].ID(), RouteTableId: rt.ID(),
		})
		if err != nil {
			return fmt.Errorf("route table association %s: %w", s.Role, err)
		}
		return nil
	}
	if c.Egress == EgressNATGateway {
		gateways := map[string]*ec2.NatGateway{}
		var first *ec2.NatGateway
		for _, s := range c.PublicSubnets {
			if gateways[s.AZ] != nil {
				continue
			}
			eip, err := ec2.NewEip(ctx, "eip-nat-"+s.AZ, &ec2.EipArgs{Domain: pulumi.String("vpc"), Tags: tags(c, "nat-"+s.AZ)})
			if err != nil {
				return fmt.Errorf("nat gateway eip %s: %w", s.AZ, err)
			}
			gw, err := ec2.NewNatGateway(ctx, "natgw-"+s.AZ, &ec2.NatGatewayArgs{
				AllocationId: eip.ID(), SubnetId: n.subnets[s.Role].ID(), Tags: tags(c, "nat-"+s.AZ),
			})
			if err != nil {
				return fmt.Errorf("nat gateway %s: %w", s.AZ, err)
			}
			gateways[s.AZ] = gw
			if first == nil {
				first = gw
			}
		}
		tables := map[string]*ec2.RouteTable{}
		for _, s := range c.PrivateSubnets {
			rt := tables[s.AZ]
			if rt == nil {
				var err error
				rt, err = ec2.NewRouteTable(ctx, "rt-private-"+s.AZ, &ec2.RouteTableArgs{VpcId: n.vpc.ID(), Tags: tags(c, "private-"+s.AZ)})
				if err != nil {
					return fmt.Errorf("private route table %s: %w", s.AZ, err)
				}
				gw := gateways[s.AZ]
				if gw == nil {
					ctx.Log.Warn(fmt.Sprintf("no public subnet in %s: private subnet %s leaves through another zone's NAT gateway (cross-zone traffic is charged)", s.AZ, s.Role), nil)
					gw = first
				}
				if _, err := ec2.NewRoute(ctx, "route-private-default-"+s.AZ, &ec2.RouteArgs{
					RouteTableId: rt.ID(), DestinationCidrBlock: pulumi.String("0.0.0.0/0"), NatGatewayId: gw.ID(),
				}); err != nil {
					return fmt.Errorf("private default route %s: %w", s.AZ, err)
				}
				tables[s.AZ] = rt
				n.privateRTs = append(n.privateRTs, rt)
			}
			if err := associate(rt, s); err != nil {
				return err
			}
		}
		return nil
	}

	rt, err := ec2.NewRouteTable(ctx, "rt-private", &ec2.RouteTableArgs{VpcId: n.vpc.ID(), Tags: tags(c, "private")})
	if err != nil {
		return fmt.Errorf("private route table: %w", err)
	}
	n.privateRTs = []*ec2.RouteTable{rt}
	for _, s := range c.PrivateSubnets {
		if err := associate(rt, s); err != nil {
			return err
		}
	}
	if c.Egress != EgressNATInstance {
		return nil
	}
	nat, err := n.natInstance(ctx, c)
	if err != nil {
		return err
	}
	// The route names the instance's primary ENI, not the instance: the
	// ENI is what carries the forwarded traffic and survives a stop/start.
	if _, err := ec2.NewRoute(ctx, "route-private-default", &ec2.RouteArgs{
		RouteTableId:         rt.ID(),
		DestinationCidrBlock: pulumi.String("0.0.0.0/0"),
		NetworkInterfaceId:   nat.PrimaryNetworkInterfaceId,
	}); err != nil {
		return fmt.Errorf("private default route: %w", err)
	}
	return nil
}

func (n *network) natInstance(ctx *pulumi.Context, c *Config) (*ec2.Instance, error) {
	var cidrs pulumi.StringArray
	for _, s := range c.PrivateSubnets {
		cidrs = append(cidrs, pulumi.String(s.CIDR))
	}
	sg, err := ec2.NewSecurityGroup(ctx, "sg-nat", &ec2.SecurityGroupArgs{
		VpcId:       n.vpc.ID(),
		Description: pulumi.String("Tally NAT instance: all traffic from the private subnets"),
		Ingress: ec2.SecurityGroupIngressArray{ec2.SecurityGroupIngressArgs{
			Description: pulumi.String("everything from the private subnets only"),
			Protocol:    pulumi.String("-1"), FromPort: pulumi.Int(0), ToPort: pulumi.Int(0),
			CidrBlocks: cidrs,
		}},
		Egress: ec2.SecurityGroupEgressArray{ec2.SecurityGroupEgressArgs{
			Protocol: pulumi.String("-1"), FromPort: pulumi.Int(0), ToPort: pulumi.Int(0),
			CidrBlocks: pulumi.StringArray{pulumi.String("0.0.0.0/0")},
		}},
		Tags: tags(c, "nat"),
	})
	if err != nil {
		return nil, fmt.Errorf("nat security group: %w", err)
	}
	ami := c.NATAMI
	if ami == "" {
		img, err := ec2.LookupAmi(ctx, &natAMIFilter)
		if err != nil {
			return nil, fmt.Errorf("look up the Amazon Linux 2023 arm64 AMI (or set %s:natAmi): %w", Namespace, err)
		}
		if img.Architecture != "arm64" {
			return nil, fmt.Errorf("NAT AMI %s (%s) is %s, want arm64 for %s", img.Id, img.Name, img.Architecture, c.NATInstanceType)
		}
		ami = img.Id
	}
	if !strings.HasPrefix(ami, "ami-") {
		return nil, fmt.Errorf("NAT AMI %q: want an AMI id (ami-…)", ami)
	}
	pub := c.PublicSubnets[0]
	inst, err := ec2.NewInstance(ctx, "nat-instance", &ec2.InstanceArgs{
		Ami:                      pulumi.String(ami),
		InstanceType:             pulumi.String(c.NATInstanceType),
		SubnetId:                 n.subnets[pub.Role].ID(),
		VpcSecurityGroupIds:      pulumi.StringArray{sg.ID()},
		SourceDestCheck:          pulumi.Bool(false),
		AssociatePublicIpAddress: pulumi.Bool(true), // dnf needs the internet before the EIP is attached
		UserData:                 pulumi.String(natUserData),
		UserDataReplaceOnChange:  pulumi.Bool(true),
		MetadataOptions: ec2.InstanceMetadataOptionsArgs{
			HttpTokens: pulumi.String("required"), HttpEndpoint: pulumi.String("enabled"),
		},
		Tags: tags(c, "nat"),
	})
	if err != nil {
		return nil, fmt.Errorf("nat instance: %w", err)
	}
	if _, err := ec2.NewEip(ctx, "eip-nat", &ec2.EipArgs{
		Domain: pulumi.String("vpc"), Instance: inst.ID(), Tags: tags(c, "nat"),
	}); err != nil {
		return nil, fmt.Errorf("nat eip: %w", err)
	}
	return inst, nil
}

// endpoints keeps S3 and DynamoDB traffic (the bulk: images, segments,
// items) off the NAT, on both route tables as in the seed, and gives SQS an
// interface endpoint so the queues work without egress.
func (n *network) endpoints(ctx *pulumi.Context, c *Config) error {
	rts := pulumi.StringArray{n.publicRT.ID()}
	for _, rt := range n.privateRTs {
		rts = append(rts, rt.ID())
	}
	for _, svc := range []string{"s3", "dynamodb"} {
		if _, err := ec2.NewVpcEndpoint(ctx, "vpce-"+svc, &ec2.VpcEndpointArgs{
			VpcId:           n.vpc.ID(),
			ServiceName:     pulumi.String("com.amazonaws." + c.Region + "." + svc),
			VpcEndpointType: pulumi.String("Gateway"),
			RouteTableIds:   rts,
			Tags:            tags(c, svc),
		}); err != nil {
			return fmt.Errorf("%s gateway endpoint: %w", svc, err)
		}
	}
	if !c.SQSEndpoint {
		return nil
	}
	var subnets pulumi.StringArray
	for _, r := range c.SQSEndpointSubnets {
		subnets = append(subnets, n.subnets[r].ID())
	}
	if _, err := ec2.NewVpcEndpoint(ctx, "vpce-sqs", &ec2.VpcEndpointArgs{
		VpcId:             n.vpc.ID(),
		ServiceName:       pulumi.String("com.amazonaws." + c.Region + ".sqs"),
		VpcEndpointType:   pulumi.String("Interface"),
		SubnetIds:         subnets,
		SecurityGroupIds:  pulumi.StringArray{n.sgEndpoint.ID()},
		PrivateDnsEnabled: pulumi.Bool(true),
		Tags:              tags(c, "sqs"),
	}); err != nil {
		return fmt.Errorf("sqs interface endpoint: %w", err)
	}
	return nil
}
