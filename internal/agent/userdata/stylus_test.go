package userdata

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/outpost-edge/outpost/internal/errs"
)

func TestIsStylus(t *testing.T) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"stylus block", "stylus:\n  site:\n    paletteEndpoint: a\n", true},
		{"header only", "#cloud-config\n", true},
		{"header and stages", "#cloud-config\nstages:\n  boot: []\n", true},
		{"header with CRLF and BOM", "\ufeff#cloud-config\r\nstylus: {}\r\n", true},
		{"header on a broken file", "#cloud-config\nstylus: [\n", true},
		{"header on our own format", "#cloud-config\nhub:\n  url: https://hub:7443\n", false},
		{"stylus wins over hub", "hub: {url: https://hub}\nstylus: {}\n", true},
		{"our format", "hub:\n  url: https://hub:7443\n", false},
		// full.yaml's first line starts with "#cloud-config" but is a comment.
		{"our example with a look-alike comment", string(full), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		if got := IsStylus([]byte(tt.data)); got != tt.want {
			t.Errorf("%s: IsStylus = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The example of the original product's staging documentation: it must
// carry over as it is, including Kairos's plain-text password.
func TestParseStylusSeedExample(t *testing.T) {
	data, err := os.ReadFile("testdata/stylus-seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	u, warns, err := ParseAny(data)
	if err != nil {
		t.Fatalf("ParseAny: %v", err)
	}
	if u.Hub.URL != "https://api.spectrocloud.com:7443" {
		t.Errorf("hub.url = %q", u.Hub.URL)
	}
	if u.Registration.URL != "https://edge-registration.vercel.app" {
		t.Errorf("registration.url = %q", u.Registration.URL)
	}
	if u.Registration.Project != DefaultProject || u.Host.Prefix() != DefaultIDPrefix {
		t.Errorf("defaults not applied: %+v %+v", u.Registration, u.Host)
	}
	if len(u.Users) != 1 || u.Users[0].Name != "kairos" || !slices.Equal(u.Users[0].Groups, []string{"sudo"}) {
		t.Fatalf("users = %+v", u.Users)
	}
	hash := u.Users[0].Passwd
	salt, ok := cryptSalt(hash)
	if !ok || sha512Crypt("kairos", salt, 0) != hash {
		t.Errorf("passwd %q is not the SHA-512 crypt of the plain password", hash)
	}
	wantWarns := []Warning{
		{"stylus.site.paletteEndpoint", 3, "read as hub.url https://api.spectrocloud.com:7443"},
		{"stages.initramfs[0].users.kairos.passwd", 12, "plain password stored as a SHA-512 crypt hash"},
	}
	checkWarnings(t, warns, wantWarns)
}

func cryptSalt(hash string) (string, bool) {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[1] != "6" {
		return "", false
	}
	return parts[2], true
}

func checkWarnings(t *testing.T, got []Warning, want []Warning) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			if g.Path == w.Path && g.Line == w.Line && strings.Contains(g.Message, w.Message) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing warning %s (line %d): %q", w.Path, w.Line, w.Message)
		}
	}
	if len(got) != len(want) {
		var b strings.Builder
		for _, g := range got {
			b.WriteString("\n  " + g.String())
		}
		t.Errorf("got %d warnings, want %d:%s", len(got), len(want), b.String())
	}
}

func TestParseStylusFull(t *testing.T) {
	data, err := os.ReadFile("testdata/stylus-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	u, warns, err := ParseAny(data)
	if err != nil {
		t.Fatalf("ParseAny: %v", err)
	}
	ref, err := Parse(mustRead(t, "testdata/full.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	if want := (Hub{URL: "https://hub.example.com:7443"}); u.Hub != want {
		t.Errorf("hub = %+v, want %+v", u.Hub, want)
	}
	if want := (Registration{Token: "rt_1234567890abcdef", Project: "store-fleet", URL: "https://register.example.com/sites"}); u.Registration != want {
		t.Errorf("registration = %+v, want %+v", u.Registration, want)
	}
	if u.Host.ID != "store-42" || u.Host.Prefix() != "store-" {
		t.Errorf("host id %q prefix %q", u.Host.ID, u.Host.Prefix())
	}
	if want := map[string]string{"region": "eu-west", "tier": "gold", "floor": "3"}; !reflect.DeepEqual(u.Host.Labels, want) {
		t.Errorf("labels = %v, want %v", u.Host.Labels, want)
	}
	// The PEM and the base64 of the same PEM are one certificate twice.
	if len(u.CACerts) != 2 || u.CACerts[0] != ref.CACerts[0] || u.CACerts[1] != ref.CACerts[0] {
		t.Errorf("caCerts = %q", u.CACerts)
	}
	if !slices.Equal(u.NTPServers, []string{"pool.ntp.org", "192.168.10.1"}) {
		t.Errorf("ntpServers = %v", u.NTPServers)
	}
	wantNet := Network{
		Interfaces: map[string]Interface{
			"enp0s3": {Type: NetworkStatic, Address: "10.0.10.25/24", Gateway: "10.0.10.1", Nameservers: []string{"10.10.128.8"}},
			"enp0s4": {Type: NetworkStatic, Address: "192.168.50.4", Mask: "255.255.255.0", Gateway: "192.168.50.1"},
			"enp0s5": {Type: NetworkDHCP},
		},
		Proxy:       Proxy{HTTPProxy: "http://proxy.example.com:3128", HTTPSProxy: "http://proxy.example.com:3128", NoProxy: "10.10.128.10,10.0.0.0/8,.svc"},
		Nameservers: []string{"1.1.1.1"},
	}
	if !reflect.DeepEqual(u.Network, wantNet) {
		t.Errorf("network =\n%+v\nwant\n%+v", u.Network, wantNet)
	}
	if want := []RegistryCredential{{Domain: "10.10.254.254:8000/spectro-images", Username: "ubuntu", Password: "secret-pass", Insecure: true}}; !reflect.DeepEqual(u.RegistryCredentials, want) {
		t.Errorf("registryCredentials = %+v", u.RegistryCredentials)
	}
	if u.LocalUI.Port != 5443 || !u.LocalUI.IsEnabled() || !u.TUI.Disabled {
		t.Errorf("localUI %+v tui %+v", u.LocalUI, u.TUI)
	}

	if len(u.Users) != 2 {
		t.Fatalf("users = %+v", u.Users)
	}
	ops, kiosk := u.Users[0], u.Users[1]
	// ops is given again in a later stage: its groups are merged.
	if ops.Name != "ops" || !slices.Equal(ops.Groups, []string{"sudo", "adm", "dialout"}) ||
		!strings.HasPrefix(ops.Passwd, "$6$abc$") || len(ops.SSHAuthorizedKeys) != 1 {
		t.Errorf("ops = %+v", ops)
	}
	// lock_passwd locks the hashed plain password.
	if salt, ok := cryptSalt(strings.TrimPrefix(kiosk.Passwd, "!")); kiosk.Name != "kiosk" || !strings.HasPrefix(kiosk.Passwd, "!$6$") ||
		!ok || "!"+sha512Crypt("kiosk", salt, 0) != kiosk.Passwd {
		t.Errorf("kiosk = %+v", kiosk)
	}
	wantFiles := []File{
		{Path: "/etc/motd", Content: "Store 42: managed by Outpost\n", Mode: "0644", Owner: "0:0"},
		{Path: "/etc/sysctl.d/90-edge.conf", Content: "net.ipv4.ip_forward = 1\n", Mode: "0644", Owner: "root:root"},
	}
	if !reflect.DeepEqual(u.Files, wantFiles) {
		t.Errorf("files =\n%+v\nwant\n%+v", u.Files, wantFiles)
	}

	checkWarnings(t, warns, []Warning{
		{"install", 2, "ignored: disk layout"},
		{"stylus.debug", 7, "ignored: set the log level"},
		{"stylus.externalRegistries", 17, "ignored: only stylus.registryCredentials is migrated"},
		{"stylus.site.paletteEndPoint", 21, "read as hub.url https://hub.example.com:7443"},
		{"stylus.site.projectName", 23, `project "Store Fleet" read as "store-fleet"`},
		{"stylus.site.hostName", 27, "ignored: the node name is the host ID"},
		{"stylus.site.tagsFromFile", 32, "ignored: labels are static"},
		{"stylus.site.projectUid", 24, "ignored: projectName is used"},
		{"stages.initramfs[0].users.ops.ssh_authorized_keys[1]", 80, "ignored: keys are not fetched from github"},
		{"stages.initramfs[0].users.ops.shell", 81, "ignored: no Outpost equivalent"},
		{"stages.initramfs[0].users.kiosk.passwd", 83, "plain password stored"},
		{"stages.boot[0].commands", 99, "ignored: run commands through the profile's OS layer"},
		{"stages.boot[1].if", 101, "ignored: conditions are not evaluated"},
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A converted file is written out in our format by `outpost-agent install`,
// so what Parse reads back must be the same settings.
func TestStylusResultRoundTrips(t *testing.T) {
	u, _, err := ParseStylus(mustRead(t, "testdata/stylus-full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse of the converted file: %v\n%s", err, out)
	}
	back.src, u.src = nil, nil
	if !reflect.DeepEqual(back, u) {
		t.Errorf("round trip changed the settings:\n%+v\n%+v", u, back)
	}
}

func TestParseAnyOwnFormat(t *testing.T) {
	u, warns, err := ParseAny(mustRead(t, "testdata/full.yaml"))
	if err != nil || warns != nil || u.Registration.Project != "stores" {
		t.Errorf("ParseAny(full.yaml) = %+v, %v, %v", u, warns, err)
	}
	// Our format keeps its own strictness: no silent migration of typos.
	_, _, err = ParseAny([]byte("hub: {url: https://hub}\nstylus_site: 1\n"))
	if !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("unknown key in our format: err = %v", err)
	}
}

func TestParseStylusErrors(t *testing.T) {
	const hub = "stylus:\n  site:\n    paletteEndpoint: hub.example.com\n" // lines 1-3
	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		{"testdata invalid file", string(mustRead(t, "testdata/stylus-invalid.yaml")), []wantErr{
			{"hub.url", "must be an https:// URL, not \"http://palette.example.com\" (from stylus.site.paletteEndpoint) (line 4)", 0},
			{"registration.project", `"bad_project!" is not a project name`, 0},
			{"registration.url", "must be an https:// URL", 0},
			{"network.interfaces.eth0", "(missing mask) (from stylus.site.network.interfaces.eth0) (line 9)", 0},
			{"ntpServers[0]", `"ntp://bad" is not a host name or IP address (from stylus.site.ntpServers) (line 13)`, 0},
			{"users[0].name", `"Admin" is not a user name (lower-case letters, digits, '_' and '-', at most 32) (from stages.boot[0].users.Admin) (line 17)`, 0},
		}},
		{"document is a list", "#cloud-config\n- stylus\n", []wantErr{{"user-data", "must be a mapping", 0}}},
		{"no endpoint", "#cloud-config\nstylus:\n  site:\n    edgeHostToken: x\n", []wantErr{
			{"hub.url", "is required (from stylus.site.paletteEndpoint)", 0},
		}},
		{"bad bool", hub + "    insecureSkipVerify: maybe\n", []wantErr{
			{"hub.insecureSkipVerify", "must be true or false, not `maybe` (from stylus.site.insecureSkipVerify) (line 4)", 0},
		}},
		{"bad port", hub + "  localUI:\n    port: lots\n", []wantErr{
			{"localUI.port", "must be a whole number, not `lots` (from stylus.localUI.port) (line 5)", 0},
		}},
		{"port out of range", hub + "  localUI:\n    port: 70000\n", []wantErr{
			{"localUI.port", "must be between 1 and 65535, not 70000 (from stylus.localUI.port) (line 5)", 0},
		}},
		{"network not a mapping", hub + "    network: [eth0]\n", []wantErr{
			{"network", "must be a mapping (from stylus.site.network) (line 4)", 0},
		}},
		{"bad gateway", hub + "    network:\n      interfaces:\n        eth0: {type: static, ipAddress: 10.0.0.5/24, gateway: router}\n", []wantErr{
			{"network.interfaces.eth0.gateway", `"router" is not an IP address (from stylus.site.network.interfaces.eth0.gateway) (line 6)`, 0},
		}},
		{"dhcp by default with an address", hub + "    network:\n      interfaces:\n        eth0:\n          ipAddress: 10.0.0.5/24\n", []wantErr{
			{"network.interfaces.eth0", "dhcp takes no address, mask or gateway (use type: static) (from stylus.site.network.interfaces.eth0) (line 6)", 0},
		}},
		{"bad tag key", hub + "    tags:\n      \"store number\": \"42\"\n", []wantErr{
			{"host.labels.store number", `"store number" is not a label key (from stylus.site.tags.store number) (line 5)`, 0},
		}},
		{"bad ssh key in a later item", hub + "stages:\n  boot:\n    - users:\n        ops:\n          ssh_authorized_keys: [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2vSPkk8kb0jldhBMzIxuL9fvSp9Cesmo5/ff1D+Hsd\", \"hello\"]\n", []wantErr{
			{"users[0].sshAuthorizedKeys[1]", "is not an SSH public key (ssh-ed25519, ssh-rsa, ecdsa-sha2-…) (from stages.boot[0].users.ops.ssh_authorized_keys[1]) (line 8)", 0},
		}},
		{"bad permissions", hub + "stages:\n  boot:\n    - files:\n        - path: /etc/x\n          permissions: rwx\n", []wantErr{
			{"files[0].mode", "must be a file mode such as 0644, not `rwx` (from stages.boot[0].files[0].permissions) (line 8)", 0},
		}},
		{"unknown encoding", hub + "stages:\n  boot:\n    - files:\n        - path: /etc/x\n          content: abc\n          encoding: zip\n", []wantErr{
			{"files[0].content", `encoding "zip" is not supported (use b64, gz or gz+b64) (from stages.boot[0].files[0].content) (line 8)`, 0},
		}},
		{"relative file path", hub + "stages:\n  boot:\n    - files:\n        - path: etc/x\n", []wantErr{
			{"files[0].path", `must be a clean absolute file path, not "etc/x" (from stages.boot[0].files[0].path) (line 7)`, 0},
		}},
		{"bad encoded password", hub + "  registryCredentials:\n    domain: r.example.com\n    username: u\n    password: '%%%'\n    encodedPassword: true\n", []wantErr{
			{"registryCredentials[0].password", "encodedPassword is set but the password is not base64 (from stylus.registryCredentials.password) (line 7)", 0},
		}},
		{"registry password without user", hub + "  registryCredentials:\n    - domain: r.example.com\n      password: p\n", []wantErr{
			{"registryCredentials[0].username", "is required with a password (from stylus.registryCredentials[0]) (line 5)", 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseAny([]byte(tt.yaml))
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("err = %v, want an ErrInvalid", err)
			}
			var list errs.FieldList
			if !errors.As(err, &list) {
				t.Fatalf("error %T %v is not a FieldList", err, err)
			}
			for _, w := range tt.want {
				found := false
				for _, e := range list {
					if e.Field == w.field && strings.Contains(e.Message, w.msg) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing %s: %q in:\n%v", w.field, w.msg, strings.ReplaceAll(list.Error(), "; ", "\n"))
				}
			}
			if len(list) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(list), len(tt.want), strings.ReplaceAll(list.Error(), "; ", "\n"))
			}
		})
	}
}

func TestParseStylusMappings(t *testing.T) {
	const hub = "stylus:\n  site:\n    paletteEndpoint: hub.example.com\n"
	tests := []struct {
		name  string
		yaml  string
		check func(*UserData) bool
		warns []string // warning paths
	}{
		{"endpoint with port keeps it", "stylus:\n  site:\n    paletteEndpoint: hub.example.com:9443\n",
			func(u *UserData) bool { return u.Hub.URL == "https://hub.example.com:9443" }, []string{"stylus.site.paletteEndpoint"}},
		{"endpoint with scheme is used as given", "stylus:\n  site:\n    paletteEndpoint: https://hub.example.com\n",
			func(u *UserData) bool { return u.Hub.URL == "https://hub.example.com" }, nil},
		{"IPv6 endpoint", "stylus:\n  site:\n    paletteEndpoint: \"[2001:db8::1]\"\n",
			func(u *UserData) bool { return u.Hub.URL == "https://[2001:db8::1]:7443" }, []string{"stylus.site.paletteEndpoint"}},
		{"projectUid alone is the project", hub + "    projectUid: 6512F1A0D5C3\n",
			func(u *UserData) bool { return u.Registration.Project == "6512f1a0d5c3" }, []string{"stylus.site.paletteEndpoint", "stylus.site.projectUid"}},
		{"prefix with its dash", hub + "    prefix: shop-\n",
			func(u *UserData) bool { return u.Host.Prefix() == "shop-" }, []string{"stylus.site.paletteEndpoint"}},
		{"empty prefix", hub + "    prefix: \"\"\n",
			func(u *UserData) bool { return u.Host.Prefix() == "" }, []string{"stylus.site.paletteEndpoint"}},
		{"random name is dropped", hub + "    name: $random\n",
			func(u *UserData) bool { return u.Host.ID == "" }, []string{"stylus.site.paletteEndpoint", "stylus.site.name"}},
		{"both registration URL spellings: the last wins", hub + "    registrationURL: https://a.example.com\n    registrationUrl: https://b.example.com\n",
			func(u *UserData) bool { return u.Registration.URL == "https://b.example.com" },
			[]string{"stylus.site.paletteEndpoint", "stylus.site.registrationUrl"}},
		{"comma-separated lists", hub + "    ntpServers: \"a.example.com, b.example.com\"\n    network:\n      noProxy: [a, b]\n      nameserver: 1.1.1.1,8.8.8.8\n",
			func(u *UserData) bool {
				return slices.Equal(u.NTPServers, []string{"a.example.com", "b.example.com"}) && u.Network.Proxy.NoProxy == "a,b" &&
					slices.Equal(u.Network.Nameservers, []string{"1.1.1.1", "8.8.8.8"})
			}, []string{"stylus.site.paletteEndpoint"}},
		{"gzip and base64 file", hub + "stages:\n  boot:\n    - files:\n        - path: /etc/x\n          encoding: gz+b64\n          content: " + gzb64("hello\n") + "\n",
			func(u *UserData) bool { return len(u.Files) == 1 && u.Files[0].Content == "hello\n" }, []string{"stylus.site.paletteEndpoint"}},
		{"file written twice", hub + "stages:\n  boot:\n    - files:\n        - {path: /etc/x, content: a}\n  network:\n    - files:\n        - {path: /etc/x, content: b, owner: 1000}\n",
			func(u *UserData) bool {
				return len(u.Files) == 1 && u.Files[0] == File{Path: "/etc/x", Content: "b", Owner: "1000"}
			}, []string{"stylus.site.paletteEndpoint", "stages.network[0].files[0]"}},
		{"site users as a list", hub + "    users:\n      - name: ops\n        passwd: \"!\"\n",
			func(u *UserData) bool {
				return len(u.Users) == 1 && reflect.DeepEqual(u.Users[0], User{Name: "ops", Passwd: "!"})
			}, []string{"stylus.site.paletteEndpoint"}},
		{"registry credentials as a list", hub + "  registryCredentials:\n    - {domain: a.example.com}\n    - {domain: b.example.com, username: u, password: p}\n",
			func(u *UserData) bool {
				return reflect.DeepEqual(u.RegistryCredentials, []RegistryCredential{{Domain: "a.example.com"}, {Domain: "b.example.com", Username: "u", Password: "p"}})
			}, []string{"stylus.site.paletteEndpoint"}},
		{"unknown keys everywhere", hub + "    remoteShell: {disable: true}\n    network:\n      mtu: 9000\n      interfaces:\n        eth0: {type: dhcp, vlan: 5}\n  featureGate: UserDataForm\nk3s:\n  enabled: true\n",
			func(u *UserData) bool { return u.Network.Interfaces["eth0"].Type == NetworkDHCP },
			[]string{"stylus.site.paletteEndpoint", "stylus.site.remoteShell", "stylus.site.network.mtu", "stylus.site.network.interfaces.eth0.vlan", "stylus.featureGate", "k3s"}},
		{"tag with a mapping value", hub + "    tags:\n      owner: {team: a}\n      ok: yes\n",
			func(u *UserData) bool { return reflect.DeepEqual(u.Host.Labels, map[string]string{"ok": "yes"}) },
			[]string{"stylus.site.paletteEndpoint", "stylus.site.tags.owner"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, warns, err := ParseStylus([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("ParseStylus: %v", err)
			}
			if !tt.check(u) {
				t.Errorf("unexpected result: %+v", u)
			}
			var paths []string
			for _, w := range warns {
				paths = append(paths, w.Path)
			}
			slices.Sort(paths)
			slices.Sort(tt.warns)
			if !slices.Equal(paths, tt.warns) {
				t.Errorf("warnings at %q, want %q: %v", paths, tt.warns, warns)
			}
		})
	}
}

func gzb64(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestValidateStagingSettings(t *testing.T) {
	const hub = "hub:\n  url: https://hub:7443\n" // lines 1-2
	key := "-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEA+8U4HE6o0G9EuAnbuw9bZbtZu2vCT8HvC+X/PjDMNYI=\\n-----END PUBLIC KEY-----\\n"
	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		{"good", hub + "registration: {url: \"https://reg.example.com/a?site=1\"}\ntui: {disabled: true}\nbundleKeys: [\"" + key + "\"]\n" +
			"files: [{path: /etc/motd, content: hi, mode: \"0600\", owner: \"root:adm\"}]\nregistryCredentials: [{domain: \"r.example.com:5000/edge\", username: u, password: p, insecure: true}]\n", nil},
		{"http registration url", hub + "registration:\n  url: http://reg.example.com\n", []wantErr{{"registration.url", "must be an https:// URL", 4}}},
		{"bad files", hub + "files:\n  - path: /etc/../x\n    mode: \"999\"\n    owner: \"Root User\"\n  - content: x\n  - path: /etc/../x\n",
			[]wantErr{
				{"files[0].path", "clean absolute file path", 4},
				{"files[0].mode", "octal mode", 5},
				{"files[0].owner", "must be \"user\"", 6},
				{"files[1].path", "is required", 7},
				{"files[2].path", "clean absolute file path", 8},
			}},
		{"duplicate file", hub + "files: [{path: /a}, {path: /a}]\n", []wantErr{{"files[1].path", "given twice", 3}}},
		{"bad registry", hub + "registryCredentials:\n  - domain: https://r.example.com\n  - username: u\n", []wantErr{
			{"registryCredentials[0].domain", "without a scheme", 4},
			{"registryCredentials[1].domain", "is required", 5},
		}},
		{"bad bundle keys", hub + "bundleKeys:\n  - nonsense\n  - \"" + strings.ReplaceAll(key, "PUBLIC KEY", "PRIVATE KEY") + "\"\n", []wantErr{
			{"bundleKeys[0]", "holds no PEM public key", 4},
			{"bundleKeys[1]", "not a PUBLIC KEY", 5},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			var list errs.FieldList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v, want a FieldList", err)
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

func TestSHA512Crypt(t *testing.T) {
	tests := []struct {
		password, salt string
		rounds         int
		want           string
	}{
		// From `openssl passwd -6 -salt saltstring 'Hello world!'`, which is
		// also the first test vector of the specification.
		{"Hello world!", "saltstring", 0, "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"kairos", "abc", 0, "$6$abc$DV.o2N8H42RP.uWwxcQdHWWrO90Q.0nN4B40z5II2OnMfH7fTviovmXHjEcBwCIP0m1Tqk6sW2Ae4Teg1v0QZ0"},
		// Specification vectors: explicit rounds, and a salt cut to 16.
		{"Hello world!", "saltstringsaltstring", 10000, "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"This is just a test", "toolongsaltstring", 5000, "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	}
	for _, tt := range tests {
		if got := sha512Crypt(tt.password, tt.salt, tt.rounds); got != tt.want {
			t.Errorf("sha512Crypt(%q, %q, %d) =\n%s\nwant\n%s", tt.password, tt.salt, tt.rounds, got, tt.want)
		}
	}
	if s := randomSalt(); len(s) != 16 || strings.Trim(s, cryptAlphabet) != "" {
		t.Errorf("randomSalt() = %q", s)
	}
}
