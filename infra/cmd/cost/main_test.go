package main

import (
	"reflect"
	"testing"

	"github.com/tallyhq/tally/infra/program"
)

// TestExampleStackIsTheDefaults: Pulumi.dev.yaml parses as Pulumi would
// hand it over (bools, lists and objects included) and spells out exactly
// the program's defaults.
func TestExampleStackIsTheDefaults(t *testing.T) {
	raw, err := stackConfig("../../Pulumi.dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := program.ParseConfig("dev", func(k string) (string, bool) { v, ok := raw[k]; return v, ok }, keys(raw))
	if err != nil {
		t.Fatal(err)
	}
	def, err := program.ParseConfig("dev", func(k string) (string, bool) {
		if k == "aws:region" {
			return "us-east-1", true
		}
		return "", false
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, def) {
		t.Errorf("Pulumi.dev.yaml:\n%+v\ndefaults:\n%+v", got, def)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
