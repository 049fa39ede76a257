package program

import (
	"fmt"
	"math"
	"strings"
)

// Prices are us-east-1 on-demand list prices in USD, read on PricesDate
// from the pages in PriceSources. Only what differs between the network
// configurations is priced: Lambda, SQS requests, S3, DynamoDB and internet
// data transfer out cost the same in every configuration.
const (
	PricesDate    = "2026-11-29"
	PricesRegion  = "us-east-1"
	HoursPerMonth = 730.0

	PricePublicIPv4Hour        = 0.005 // per public IPv4 address, attached or not (charged since 2024-02-01)
	PriceNATGatewayHour        = 0.045 // per NAT gateway (one per zone)
	PriceNATGatewayGB          = 0.045 // per GB processed, both directions
	PriceInterfaceEndpointHour = 0.01  // per endpoint per zone
	PriceInterfaceEndpointGB   = 0.01  // per GB processed (first PB tier)
	PriceGatewayEndpoint       = 0.0   // S3 and DynamoDB gateway endpoints are free
	PriceEFSStandardGBMonth    = 0.30
	PriceEFSElasticReadGB      = 0.03
	PriceEFSElasticWriteGB     = 0.06
	PriceEBSgp3GBMonth         = 0.08 // the NAT instance's root volume
	NATRootVolumeGB            = 8.0  // the AL2023 AMI's default root volume
)

// InstancePriceHour is the Linux on-demand hourly price of the NAT
// instance types this table knows.
var InstancePriceHour = map[string]float64{
	"t4g.nano":  0.0042,
	"t4g.micro": 0.0084,
	"t4g.small": 0.0168,
}

// PriceSources are where the prices above come from.
var PriceSources = []string{
	"https://aws.amazon.com/ec2/pricing/on-demand/ (t4g instances)",
	"https://aws.amazon.com/vpc/pricing/ (NAT gateway, public IPv4 addresses, gateway endpoints)",
	"https://aws.amazon.com/privatelink/pricing/ (interface endpoints)",
	"https://aws.amazon.com/efs/pricing/ (Standard storage, Elastic Throughput)",
	"https://aws.amazon.com/ebs/pricing/ (gp3, the NAT instance's 8 GB root volume)",
}

// Usage is the monthly traffic and storage the usage-priced parts see.
type Usage struct {
	NATGB        float64 // GB/month through the NAT (OpenAI, Places)
	SQSGB        float64 // GB/month through the SQS interface endpoint
	EFSStorageGB float64 // GB stored on EFS (average over the month)
	EFSReadGB    float64 // GB/month read from EFS
	EFSWriteGB   float64 // GB/month written to EFS
}

// Cost is one configuration's monthly network and file-system cost.
type Cost struct {
	NAT, PublicIPv4, SQSEndpoint, EFS float64
}

// Total is the monthly sum.
func (c Cost) Total() float64 { return c.NAT + c.PublicIPv4 + c.SQSEndpoint + c.EFS }

// MonthlyCost prices a validated config at the given usage.
func MonthlyCost(c Config, u Usage) (Cost, error) {
	var out Cost
	switch c.Egress {
	case EgressNATInstance:
		h, ok := InstancePriceHour[c.NATInstanceType]
		if !ok {
			return Cost{}, fmt.Errorf("no price for NAT instance type %s (known: t4g.nano, t4g.micro, t4g.small): add it to InstancePriceHour", c.NATInstanceType)
		}
		// No per-GB processing charge: the instance forwards for free.
		out.NAT = h*HoursPerMonth + PriceEBSgp3GBMonth*NATRootVolumeGB
		out.PublicIPv4 = PricePublicIPv4Hour * HoursPerMonth // its Elastic IP
	case EgressNATGateway:
		n := float64(c.NATGatewayCount())
		out.NAT = n*PriceNATGatewayHour*HoursPerMonth + PriceNATGatewayGB*u.NATGB
		out.PublicIPv4 = n * PricePublicIPv4Hour * HoursPerMonth
	}
	if c.SQSEndpoint {
		out.SQSEndpoint = float64(len(c.SQSEndpointSubnets))*PriceInterfaceEndpointHour*HoursPerMonth + PriceInterfaceEndpointGB*u.SQSGB
	}
	if c.EFS {
		out.EFS = PriceEFSStandardGBMonth*u.EFSStorageGB + PriceEFSElasticReadGB*u.EFSReadGB + PriceEFSElasticWriteGB*u.EFSWriteGB
	}
	return out, nil
}

// NATGatewayCount is how many NAT gateways egress nat-gateway makes: one
// per zone of the public subnets.
func (c *Config) NATGatewayCount() int {
	zones := map[string]bool{}
	for _, s := range c.PublicSubnets {
		zones[s.AZ] = true
	}
	return len(zones)
}

// CostRow is one line of the cost table.
type CostRow struct {
	Variant Variant
	Cost    Cost
	Err     error
}

// CostTable renders rows as a markdown table, with the usage and sources
// below it.
func CostTable(rows []CostRow, u Usage) string {
	var b strings.Builder
	money := func(v float64) string { return fmt.Sprintf("$%.2f", math.Round(v*100)/100) }
	b.WriteString("| configuration | NAT | public IPv4 | SQS endpoint | EFS | total / month |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | invalid: %v | | | | |\n", r.Variant.Name, r.Err)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | **%s** |\n", r.Variant.Name,
			money(r.Cost.NAT), money(r.Cost.PublicIPv4), money(r.Cost.SQSEndpoint), money(r.Cost.EFS), money(r.Cost.Total()))
	}
	fmt.Fprintf(&b, "\nUsage: %g GB/month through a NAT gateway, %g GB/month through the SQS endpoint, EFS %g GB stored, %g GB read and %g GB written a month. ",
		u.NATGB, u.SQSGB, u.EFSStorageGB, u.EFSReadGB, u.EFSWriteGB)
	fmt.Fprintf(&b, "%s on-demand prices of %s, %g h/month; S3 and DynamoDB gateway endpoints are free. Not included (the same in every configuration): Lambda, SQS requests, S3, DynamoDB, internet data transfer out.\n", PricesRegion, PricesDate, HoursPerMonth)
	b.WriteString("Sources:\n")
	for _, s := range PriceSources {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	return b.String()
}

// CostRows prices every variant on top of a base config.
func CostRows(stack string, base map[string]string, u Usage) []CostRow {
	var rows []CostRow
	for _, v := range Variants {
		cfg := v.With(base)
		if _, ok := cfg["aws:region"]; !ok {
			cfg["aws:region"] = PricesRegion
		}
		c, err := ParseConfig(stack, func(k string) (string, bool) { s, ok := cfg[k]; return s, ok }, nil)
		if err != nil {
			rows = append(rows, CostRow{Variant: v, Err: err})
			continue
		}
		cost, err := MonthlyCost(c, u)
		rows = append(rows, CostRow{Variant: v, Cost: cost, Err: err})
	}
	return rows
}
