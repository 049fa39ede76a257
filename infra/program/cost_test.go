package program

import (
	"math"
	"strings"
	"testing"
)

func TestMonthlyCost(t *testing.T) {
	u := Usage{NATGB: 10, SQSGB: 2, EFSStorageGB: 5, EFSReadGB: 100, EFSWriteGB: 10}
	natInstance := 0.0042*730 + 0.08*8 // 3.066 + 0.64
	eip := 0.005 * 730                 // 3.65
	endpoint2 := 2*0.01*730 + 0.01*2   // two zones + 2 GB
	for _, tc := range []struct {
		variant string
		want    Cost
	}{
		{"default", Cost{NAT: natInstance, PublicIPv4: eip, SQSEndpoint: endpoint2}},
		{"efs", Cost{NAT: natInstance, PublicIPv4: eip, SQSEndpoint: endpoint2, EFS: 0.30*5 + 0.03*100 + 0.06*10}},
		{"nat-gateway", Cost{NAT: 2*0.045*730 + 0.045*10, PublicIPv4: 2 * eip, SQSEndpoint: endpoint2}},
		{"no-egress", Cost{SQSEndpoint: endpoint2}},
		{"no-sqs-endpoint", Cost{NAT: natInstance, PublicIPv4: eip}},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			var row *CostRow
			rows := CostRows("dev", nil, u)
			for i := range rows {
				if rows[i].Variant.Name == tc.variant {
					row = &rows[i]
				}
			}
			if row == nil || row.Err != nil {
				t.Fatalf("row %+v", row)
			}
			for _, f := range [][3]any{{"NAT", row.Cost.NAT, tc.want.NAT}, {"IPv4", row.Cost.PublicIPv4, tc.want.PublicIPv4},
				{"SQS", row.Cost.SQSEndpoint, tc.want.SQSEndpoint}, {"EFS", row.Cost.EFS, tc.want.EFS}} {
				if math.Abs(f[1].(float64)-f[2].(float64)) > 1e-9 {
					t.Errorf("%s = %.4f, want %.4f", f[0], f[1], f[2])
				}
			}
		})
	}
}

// TestCostHeadlineNumbers pins the figures the README quotes.
func TestCostHeadlineNumbers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"t4g.nano month", InstancePriceHour["t4g.nano"] * HoursPerMonth, 3.07},
		{"public IPv4 month", PricePublicIPv4Hour * HoursPerMonth, 3.65},
		{"NAT gateway month per zone", PriceNATGatewayHour * HoursPerMonth, 32.85},
		{"interface endpoint month per zone", PriceInterfaceEndpointHour * HoursPerMonth, 7.30},
	} {
		if math.Round(tc.got*100)/100 != tc.want {
			t.Errorf("%s = %.4f, want %.2f", tc.name, tc.got, tc.want)
		}
	}
}

func TestCostTable(t *testing.T) {
	u := Usage{NATGB: 5, SQSGB: 1}
	rows := CostRows("dev", map[string]string{"tally:natInstanceType": "c7g.large"}, u)
	table := CostTable(rows, u)
	if !strings.Contains(table, "| default | invalid: no price for NAT instance type c7g.large") {
		t.Errorf("an unpriced type should show as invalid:\n%s", table)
	}
	if !strings.Contains(table, "| nat-gateway | $65.93 | $7.30 | $14.61 | $0.00 | **$87.84** |") {
		t.Errorf("nat-gateway row wrong:\n%s", table)
	}
	for _, s := range PriceSources {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks source %s", s)
		}
	}
}
