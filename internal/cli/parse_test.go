package cli

import (
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

func TestParseLabelArgs(t *testing.T) {
	tests := []struct {
		args   []string
		set    map[string]string
		remove []string
		err    string
	}{
		{args: []string{"site=berlin"}, set: map[string]string{"site": "berlin"}},
		{args: []string{"site=berlin", "rack=4", "old-"}, set: map[string]string{"site": "berlin", "rack": "4"}, remove: []string{"old"}},
		{args: []string{"old-", "older-", "old-"}, set: map[string]string{}, remove: []string{"old", "older"}},
		{args: []string{"empty="}, set: map[string]string{"empty": ""}},
		{args: []string{"k=v=w"}, set: map[string]string{"k": "v=w"}},
		{args: []string{"k=ends-"}, set: map[string]string{"k": "ends-"}},
		{args: []string{"example.com/zone=eu-1"}, set: map[string]string{"example.com/zone": "eu-1"}},
		{args: []string{"name=edge one"}, set: map[string]string{"name": "edge one"}},
		{args: []string{"site"}, err: `label "site": want key=value`},
		{args: []string{"=v"}, err: `label "=v": empty key`},
		{args: []string{"-"}, err: `label "-": empty key`},
		{args: []string{""}, err: `want key=value`},
		{args: []string{"a b=c"}, err: `key must not contain " "`},
		{args: []string{"a,b-"}, err: `key must not contain ","`},
		{args: []string{"k=1", "k-"}, err: `label "k" is both set and removed`},
		{args: []string{"k-", "k=1"}, err: `label "k" is both set and removed`},
		{args: []string{"k=1", "k=2"}, err: `label "k" is set twice`},
		{args: nil, err: "no label changes"},
	}
	for _, tt := range tests {
		got, err := parseLabelArgs(tt.args)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseLabelArgs(%q) err = %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseLabelArgs(%q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(got.Set, tt.set) || !reflect.DeepEqual(got.Remove, tt.remove) {
			t.Errorf("parseLabelArgs(%q) = %v -%v, want %v -%v", tt.args, got.Set, got.Remove, tt.set, tt.remove)
		}
	}
}

func TestParseLabelSet(t *testing.T) {
	tests := []struct {
		args []string
		want map[string]string
		err  string
	}{
		{args: nil, want: nil},
		{args: []string{"a=1", "b=2"}, want: map[string]string{"a": "1", "b": "2"}},
		{args: []string{"a=1", "a=1"}, want: map[string]string{"a": "1"}},
		{args: []string{"a-"}, err: `label "a-": want key=value`},
		{args: []string{"=1"}, err: "empty key"},
		{args: []string{"a=1", "a=2"}, err: "set twice"},
	}
	for _, tt := range tests {
		got, err := parseLabelSet(tt.args)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseLabelSet(%q) err = %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseLabelSet(%q) = %v, %v; want %v", tt.args, got, err, tt.want)
		}
	}
}

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "site=berlin", want: "site=berlin"},
		{in: "site=berlin, gpu", want: "site=berlin,gpu"},
		{in: " site = berlin ,tier!=edge,!old,zone==a ", want: "site=berlin,tier!=edge,!old,zone==a"},
		{in: "example.com/zone=eu", want: "example.com/zone=eu"},
		{in: "k=", want: "k="},
		{in: "a=1,,b,", want: "a=1,b"},
		{in: "a=b=c", want: "a=b=c"},
		{in: "a!=b=c", want: "a!=b=c"},
		{in: "! gpu", want: "!gpu"},
		{in: "=v", err: "bad key"},
		{in: "!", err: "bad key"},
		{in: "a b=c", err: "bad key"},
		{in: "!a=b", err: "bad key"},
	}
	for _, tt := range tests {
		got, err := parseSelector(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseSelector(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseSelector(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	at := func(s string) *time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return &t
	}
	tests := []struct {
		in   string
		want *time.Time
		err  string
	}{
		{in: "", want: nil},
		{in: "never", want: nil},
		{in: "24h", want: at("2030-01-03T03:04:05Z")},
		{in: "90m", want: at("2030-01-02T04:34:05Z")},
		{in: "7d", want: at("2030-01-09T03:04:05Z")},
		{in: "1d12h", want: at("2030-01-03T15:04:05Z")},
		{in: "2031-06-01T00:00:00Z", want: at("2031-06-01T00:00:00Z")},
		{in: "2031-06-01T02:00:00+02:00", want: at("2031-06-01T00:00:00Z")},
		{in: "2031-06-01", want: at("2031-06-01T00:00:00Z")},
		{in: "0s", err: "must be in the future"},
		{in: "-1h", err: "must be in the future"},
		{in: "2029-01-01T00:00:00Z", err: "must be in the future"},
		{in: "tomorrow", err: "want a duration"},
		{in: "5x", err: "want a duration"},
		{in: "1dx", err: "want a duration"},
	}
	for _, tt := range tests {
		got, err := parseExpiry(tt.in, now)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseExpiry(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseExpiry(%q): %v", tt.in, err)
			continue
		}
		if (got == nil) != (tt.want == nil) || (got != nil && !got.Equal(*tt.want)) {
			t.Errorf("parseExpiry(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseRoles(t *testing.T) {
	tests := []struct {
		args []string
		want []v1.ProjectRole
		err  string
	}{
		{args: []string{"default=viewer"}, want: []v1.ProjectRole{{Project: "default", Role: "viewer"}}},
		{args: []string{"*=admin", "lab=editor"}, want: []v1.ProjectRole{{Project: "*", Role: "admin"}, {Project: "lab", Role: "editor"}}},
		{args: nil, err: "no roles"},
		{args: []string{"default"}, err: "want PROJECT=ROLE"},
		{args: []string{"=admin"}, err: "want PROJECT=ROLE"},
		{args: []string{"default="}, err: "want PROJECT=ROLE"},
		{args: []string{"a=viewer", "a=admin"}, err: `project "a" given twice`},
	}
	for _, tt := range tests {
		got, err := parseRoles(tt.args)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseRoles(%q) err = %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseRoles(%q) = %v, %v; want %v", tt.args, got, err, tt.want)
		}
	}
}

func TestParseObjectRef(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "", want: ""},
		{in: "EdgeHost/edge-1", want: "EdgeHost/edge-1"},
		{in: "host/edge-1", want: "EdgeHost/edge-1"},
		{in: "Token/t1", want: "RegistrationToken/t1"},
		{in: "Widget/w", want: "Widget/w"},
		{in: "edge-1", err: "want Kind/name"},
		{in: "/edge-1", err: "want Kind/name"},
		{in: "EdgeHost/", err: "want Kind/name"},
	}
	for _, tt := range tests {
		got, err := parseObjectRef(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseObjectRef(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseObjectRef(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	if got := normalize("ready", hostStates...); got != v1.HostReady {
		t.Errorf("normalize(ready) = %q", got)
	}
	if got := normalize("pendingapproval", hostStates...); got != v1.HostPendingApproval {
		t.Errorf("normalize(pendingapproval) = %q", got)
	}
	if got := normalize("Weird", hostStates...); got != "Weird" {
		t.Errorf("unknown values must pass through, got %q", got)
	}
}
