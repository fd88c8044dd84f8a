package profile

import (
	"maps"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

func TestCheckVarValue(t *testing.T) {
	tests := []struct {
		typ     string
		value   string
		wantMsg string // "" for valid
	}{
		{v1.VarString, "anything: at all\n", ""},
		{v1.VarNumber, "0", ""},
		{v1.VarNumber, "-12.5", ""},
		{v1.VarNumber, "1e3", ""},
		{v1.VarNumber, "0x10", "is not a number"},
		{v1.VarNumber, "1_000", "is not a number"},
		{v1.VarNumber, "01", "is not a number"},
		{v1.VarNumber, "NaN", "is not a number"},
		{v1.VarNumber, ".5", "is not a number"},
		{v1.VarBool, "true", ""},
		{v1.VarBool, "false", ""},
		{v1.VarBool, "yes", "is not true or false"},
		{v1.VarBool, "True", "is not true or false"},
		{v1.VarIPv4, "10.0.0.1", ""},
		{v1.VarIPv4, "10.0.0.256", "is not an IPv4 address"},
		{v1.VarIPv4, "010.0.0.1", "is not an IPv4 address"},
		{v1.VarIPv4, "::1", "is not an IPv4 address"},
		{v1.VarIPv4, "::ffff:10.0.0.1", "is not an IPv4 address"},
		{v1.VarCIDR, "10.42.0.0/16", ""},
		{v1.VarCIDR, "fd00:10::/56", ""},
		{v1.VarCIDR, "10.42.0.1/16", "has host bits set (did you mean 10.42.0.0/16?)"},
		{v1.VarCIDR, "10.42.0.0", "is not a CIDR"},
		{v1.VarCIDR, "10.42.0.0/33", "is not a CIDR"},
		{v1.VarVersion, "1.30.4", ""},
		{v1.VarVersion, "v1.30.4", ""},
		{v1.VarVersion, "1.30.4+k3s1", ""},
		{v1.VarVersion, "1.30", "is not a semantic version"},
		{"color", "red", `unknown type "color"`},
	}
	for _, tt := range tests {
		msg := checkVarValue(tt.typ, tt.value)
		if tt.wantMsg == "" && msg != "" || !strings.Contains(msg, tt.wantMsg) {
			t.Errorf("checkVarValue(%s, %q) = %q, want …%s…", tt.typ, tt.value, msg, tt.wantMsg)
		}
	}
}

func TestResolveVariables(t *testing.T) {
	decls := []v1.ProfileVariable{
		{Name: "podCIDR", Type: v1.VarCIDR, Default: "10.42.0.0/16"},
		{Name: "siteCode", Type: v1.VarString, Required: true, Regex: "[a-z]{2}-[0-9]{3}"},
		{Name: "vip", Type: v1.VarIPv4},
		{Name: "replicas", Type: v1.VarNumber, Default: "1"},
		{Name: "debug", Type: v1.VarBool},
	}
	tests := []struct {
		name  string
		given map[string]string
		want  map[string]string
		field string
		msg   string
	}{
		{
			name:  "defaults and given values",
			given: map[string]string{"siteCode": "de-042", "vip": "192.168.1.10"},
			want:  map[string]string{"podCIDR": "10.42.0.0/16", "siteCode": "de-042", "vip": "192.168.1.10", "replicas": "1", "debug": ""},
		},
		{
			name:  "given overrides default",
			given: map[string]string{"siteCode": "de-042", "podCIDR": "10.50.0.0/16", "debug": "true"},
			want:  map[string]string{"podCIDR": "10.50.0.0/16", "siteCode": "de-042", "vip": "", "replicas": "1", "debug": "true"},
		},
		{name: "an empty value takes the default", given: map[string]string{"siteCode": "de-042", "replicas": ""}, want: map[string]string{"podCIDR": "10.42.0.0/16", "siteCode": "de-042", "vip": "", "replicas": "1", "debug": ""}},
		{name: "required", given: map[string]string{}, field: "variables.siteCode", msg: "is required"},
		{name: "required and empty", given: map[string]string{"siteCode": ""}, field: "variables.siteCode", msg: "is required"},
		{name: "regex is the whole value", given: map[string]string{"siteCode": "xde-042"}, field: "variables.siteCode", msg: `"xde-042" does not match [a-z]{2}-[0-9]{3}`},
		{name: "type", given: map[string]string{"siteCode": "de-042", "vip": "fe80::1"}, field: "variables.vip", msg: "is not an IPv4 address"},
		{name: "number", given: map[string]string{"siteCode": "de-042", "replicas": "two"}, field: "variables.replicas", msg: "is not a number"},
		{name: "bool", given: map[string]string{"siteCode": "de-042", "debug": "on"}, field: "variables.debug", msg: "is not true or false"},
		{name: "unknown name", given: map[string]string{"siteCode": "de-042", "sitecode": "x"}, field: "variables.sitecode", msg: "declares no such variable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveVariables(decls, tt.given)
			if tt.field != "" {
				wantFieldError(t, err, tt.field, tt.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResolveVariablesReportsAll(t *testing.T) {
	decls := []v1.ProfileVariable{
		{Name: "a", Type: v1.VarString, Required: true},
		{Name: "b", Type: v1.VarNumber},
	}
	_, err := ResolveVariables(decls, map[string]string{"b": "x", "c": "1"})
	for _, f := range []string{"variables.a", "variables.b", "variables.c"} {
		wantFieldError(t, err, f, "")
	}
}
