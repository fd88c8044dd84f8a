package userdata

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/outpost-edge/outpost/internal/errs"
)

func TestParseFullExample(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	u, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if u.Hub.URL != "https://hub.example.com:7443" || u.Registration.Project != "stores" {
		t.Errorf("hub/registration = %+v %+v", u.Hub, u.Registration)
	}
	if got := u.Host.Prefix(); got != "store-" {
		t.Errorf("prefix = %q", got)
	}
	labels := u.Labels()
	if labels["name"] != "Store 42 back office" || labels["region"] != "eu-west" || labels["example.com/tier"] != "gold" {
		t.Errorf("labels = %v", labels)
	}
	eth0, err := u.Network.Interfaces["eth0"].Prefix()
	if err != nil || eth0 != netip.MustParsePrefix("192.168.10.20/24") {
		t.Errorf("eth0 prefix = %v, %v", eth0, err)
	}
	eth1, err := u.Network.Interfaces["eth1"].Prefix()
	if err != nil || eth1 != netip.MustParsePrefix("10.1.0.5/24") {
		t.Errorf("eth1 prefix = %v, %v", eth1, err)
	}
	if len(u.CACerts) != 1 || len(u.Users) != 1 || u.Users[0].Groups[1] != "adm" {
		t.Errorf("caCerts/users = %d %+v", len(u.CACerts), u.Users)
	}
	if !u.LocalUI.IsEnabled() || u.LocalUI.Port != 5080 {
		t.Errorf("localUI = %+v", u.LocalUI)
	}
}

func TestParseDefaults(t *testing.T) {
	u, err := Parse([]byte("hub:\n  url: https://hub:7443\n"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Registration.Project != DefaultProject || u.Host.Prefix() != DefaultIDPrefix ||
		u.LocalUI.Port != DefaultLocalUIPort || !u.LocalUI.IsEnabled() {
		t.Errorf("defaults not applied: %+v %+v %+v", u.Registration, u.Host, u.LocalUI)
	}
	if u.Labels() != nil {
		t.Errorf("labels = %v, want none", u.Labels())
	}

	// An explicit empty prefix means no prefix, not the default.
	u, err = Parse([]byte("hub: {url: https://hub}\nhost: {idPrefix: \"\"}\nlocalUI: {enabled: false}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Host.Prefix() != "" || u.LocalUI.IsEnabled() {
		t.Errorf("explicit values overridden: prefix %q enabled %v", u.Host.Prefix(), u.LocalUI.IsEnabled())
	}
}

// wantErr is one expected field error: the path, a part of the message,
// and the line the message must point at (0: no line expected).
type wantErr struct {
	field, msg string
	line       int
}

func TestParseErrors(t *testing.T) {
	const hub = "hub:\n  url: https://hub:7443\n" // lines 1-2
	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		{"empty file", "", []wantErr{{"hub.url", "is required", 0}}},
		{"unknown top-level key", hub + "bogus: 1\n", []wantErr{{"bogus", "unknown key", 3}}},
		{"unknown nested key", hub + "network:\n  interfaces:\n    eth0:\n      type: dhcp\n      adress: 1.2.3.4\n",
			[]wantErr{{"network.interfaces.eth0.adress", "unknown key", 7}}},
		{"wrong type", hub + "localUI:\n  port: lots\n", []wantErr{{"localUI.port", "must be a whole number, not `lots`", 4}}},
		{"list expected", hub + "ntpServers: pool.ntp.org\n", []wantErr{{"ntpServers", "must be a list", 3}}},
		{"http hub", "hub:\n  url: http://hub:7443\n", []wantErr{{"hub.url", "must be an https:// URL", 2}}},
		{"hub without host", "hub:\n  url: https:///x\n", []wantErr{{"hub.url", "has no host", 2}}},
		{"ca cert and file", "hub:\n  url: https://hub\n  caCert: x\n  caFile: /etc/ca.pem\n",
			[]wantErr{{"hub.caFile", "not both", 4}, {"hub.caCert", "holds no PEM certificate", 3}}},
		{"relative ca file", hub + "  caFile: ca.pem\n", []wantErr{{"hub.caFile", "absolute path", 3}}},
		{"bad project", hub + "registration:\n  project: Stores_EU\n", []wantErr{{"registration.project", "not a project name", 4}}},
		{"bad host id", hub + "host:\n  id: store/42\n", []wantErr{{"host.id", "not a host ID", 4}}},
		{"bad prefix", hub + "host:\n  idPrefix: -x\n", []wantErr{{"host.idPrefix", "not an ID prefix", 4}}},
		{"name conflicts with label", hub + "host:\n  name: a\n  labels:\n    name: b\n",
			[]wantErr{{"host.labels.name", "conflicts with host.name", 6}}},
		{"bad label key", hub + "host:\n  labels:\n    \"-x\": y\n", []wantErr{{"host.labels.-x", "not a label key", 5}}},
		{"static without anything", hub + "network:\n  interfaces:\n    eth0:\n      type: static\n",
			[]wantErr{{"network.interfaces.eth0", "static needs address, mask and gateway (missing address, mask, gateway)", 5}}},
		{"static without gateway", hub + "network:\n  interfaces:\n    eth0:\n      type: static\n      address: 10.0.0.2/24\n",
			[]wantErr{{"network.interfaces.eth0", "static needs address, mask and gateway (missing gateway)", 5}}},
		{"static plain address needs mask", hub + "network:\n  interfaces:\n    eth0: {type: static, address: 10.0.0.2, gateway: 10.0.0.1}\n",
			[]wantErr{{"network.interfaces.eth0", "(missing mask)", 5}}},
		{"static bad values", hub + "network:\n  interfaces:\n    eth0:\n      type: static\n      address: 10.0.0.300\n      mask: 24\n      gateway: router\n",
			[]wantErr{{"network.interfaces.eth0.address", "not an IP address", 7}, {"network.interfaces.eth0.gateway", "not an IP address", 9}}},
		{"static mask conflict", hub + "network:\n  interfaces:\n    eth0:\n      type: static\n      address: 10.0.0.2/16\n      mask: 255.255.255.0\n      gateway: 10.0.0.1\n",
			[]wantErr{{"network.interfaces.eth0.mask", "conflicts with the /16", 8}}},
		{"static non-contiguous mask", hub + "network:\n  interfaces:\n    eth0:\n      type: static\n      address: 10.0.0.2\n      mask: 255.0.255.0\n      gateway: 10.0.0.1\n",
			[]wantErr{{"network.interfaces.eth0.mask", "not contiguous", 8}}},
		{"static gateway family", hub + "network:\n  interfaces:\n    eth0:\n      type: static\n      address: 10.0.0.2/24\n      gateway: 2001:db8::1\n",
			[]wantErr{{"network.interfaces.eth0.gateway", "same IP family", 8}}},
		{"dhcp with address", hub + "network:\n  interfaces:\n    eth0:\n      type: dhcp\n      gateway: 10.0.0.1\n",
			[]wantErr{{"network.interfaces.eth0", "dhcp takes no address", 5}}},
		{"missing type", hub + "network:\n  interfaces:\n    eth0:\n      nameservers: [8.8.8.8]\n",
			[]wantErr{{"network.interfaces.eth0.type", "is required", 5}}},
		{"unknown type", hub + "network:\n  interfaces:\n    eth0:\n      type: ppp\n",
			[]wantErr{{"network.interfaces.eth0.type", `not "ppp"`, 6}}},
		{"bad nic name", hub + "network:\n  interfaces:\n    averyveryverylongname0:\n      type: dhcp\n",
			[]wantErr{{"network.interfaces.averyveryverylongname0", "not a network interface name", 5}}},
		{"bad nameservers", hub + "network:\n  nameservers: [1.1.1.1, dns.example]\n  interfaces:\n    eth0: {type: dhcp, nameservers: [x]}\n",
			[]wantErr{{"network.interfaces.eth0.nameservers[0]", "not an IP address", 6}, {"network.nameservers[1]", "not an IP address", 4}}},
		{"bad proxy", hub + "network:\n  proxy:\n    httpProxy: ftp://proxy:21\n    httpsProxy: proxy:99999\n    noProxy: a, b c\n",
			[]wantErr{{"network.proxy.httpProxy", "scheme must be", 5}, {"network.proxy.httpsProxy", "bad port", 6}, {"network.proxy.noProxy", "separate entries with commas", 7}}},
		{"bad ca cert", hub + "caCerts:\n  - |\n    -----BEGIN CERTIFICATE-----\n    AAAA\n    -----END CERTIFICATE-----\n",
			[]wantErr{{"caCerts[0]", "certificate 1:", 4}}},
		{"bad ntp", hub + "ntpServers: [pool.ntp.org, \"ntp://x\"]\n", []wantErr{{"ntpServers[1]", "not a host name", 3}}},
		{"bad users", hub + "users:\n  - name: Bad Name\n    passwd: secret\n    groups: [ok, \"no good\"]\n    sshAuthorizedKeys: [\"hello\"]\n  - groups: []\n",
			[]wantErr{
				{"users[0].name", "not a user name", 4},
				{"users[0].groups[1]", "not a group name", 6},
				{"users[0].passwd", "not a plain password", 5},
				{"users[0].sshAuthorizedKeys[0]", "not an SSH public key", 7},
				{"users[1].name", "is required", 8},
			}},
		{"duplicate user", hub + "users:\n  - name: ops\n  - name: ops\n", []wantErr{{"users[1].name", "given twice", 5}}},
		{"bad port", hub + "localUI:\n  port: 70000\n", []wantErr{{"localUI.port", "between 1 and 65535", 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			var list errs.FieldList
			if !errors.As(err, &list) {
				t.Fatalf("error %T %v is not a FieldList", err, err)
			}
			for _, w := range tt.want {
				if !hasFieldError(list, w) {
					t.Errorf("missing %s: %q (line %d) in:\n%v", w.field, w.msg, w.line, strings.ReplaceAll(list.Error(), "; ", "\n"))
				}
			}
			if len(list) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(list), len(tt.want), strings.ReplaceAll(list.Error(), "; ", "\n"))
			}
		})
	}
}

func hasFieldError(list errs.FieldList, w wantErr) bool {
	for _, e := range list {
		if e.Field != w.field || !strings.Contains(e.Message, w.msg) {
			continue
		}
		hasLine := strings.Contains(e.Message, "(line ")
		if w.line == 0 && !hasLine {
			return true
		}
		if w.line > 0 && strings.HasSuffix(e.Message, fmt.Sprintf("(line %d)", w.line)) {
			return true
		}
	}
	return false
}

func TestParseSyntaxError(t *testing.T) {
	_, err := Parse([]byte("hub: [unclosed\n"))
	if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "line") {
		t.Errorf("err = %v, want an ErrInvalid with a line", err)
	}
	_, err = Parse([]byte("hub: {url: https://a}\n---\nhub: {url: https://b}\n"))
	if err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Errorf("err = %v, want one-document error", err)
	}
}

// Validate works on values built in code too (the site TUI edits them):
// then there are no lines to point at.
func TestValidateWithoutSource(t *testing.T) {
	u := &UserData{Hub: Hub{URL: "https://hub"}}
	u.Network.Interfaces = map[string]Interface{"eth0": {Type: NetworkStatic, Address: "10.0.0.2/24"}}
	err := u.Validate()
	var list errs.FieldList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("err = %v", err)
	}
	if list[0].Field != "network.interfaces.eth0" || strings.Contains(list[0].Message, "line") {
		t.Errorf("error = %v", list[0])
	}
}

func TestParseMask(t *testing.T) {
	tests := []struct {
		mask string
		is4  bool
		want int
		ok   bool
	}{
		{"24", true, 24, true},
		{"/16", true, 16, true},
		{"255.255.255.0", true, 24, true},
		{"255.255.255.255", true, 32, true},
		{"0.0.0.0", true, 0, true},
		{"255.255.0.255", true, 0, false},
		{"33", true, 0, false},
		{"64", false, 64, true},
		{"255.255.255.0", false, 0, false},
		{"abc", true, 0, false},
	}
	for _, tt := range tests {
		got, err := parseMask(tt.mask, tt.is4)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseMask(%q, %v) = %d, %v; want %d ok=%v", tt.mask, tt.is4, got, err, tt.want, tt.ok)
		}
	}
}
