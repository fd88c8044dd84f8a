package oslayer_test

import (
	"context"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	dt "github.com/outpost-edge/outpost/internal/agent/provider/distro/distrotest"
	"github.com/outpost-edge/outpost/internal/agent/provider/oslayer"
)

// layer is the contract profile's Ubuntu layer with more of the values
// set, changed by edit.
func layer(t *testing.T, edit func(v map[string]any)) v1.RenderedLayer {
	t.Helper()
	l, _ := dt.Render(t, dt.Profile("k3s", "1.32.3+k3s1"))
	v := map[string]any{}
	if err := yaml.Unmarshal([]byte(l.Values), &v); err != nil {
		t.Fatal(err)
	}
	v["users"] = []any{map[string]any{
		"name":              "ops",
		"groups":            []any{"sudo"},
		"passwordHash":      "$6$fake$hash",
		"sshAuthorizedKeys": []any{"ssh-ed25519 AAAAC3NzaFakeKey ops@store-berlin"},
	}}
	v["services"] = map[string]any{"apparmor": "enabled", "unattended-upgrades": "disabled"}
	if edit != nil {
		edit(v)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	l.Values, l.Layer = string(out), v1.LayerOS
	l.Hash = dt.Hash(l.Values)
	return l
}

func host(t *testing.T) *dt.Host {
	h := dt.NewHost(t)
	h.Write("/etc/os-release", dt.OSRelease, 0o644)
	h.Write("/etc/fstab", "UUID=1234 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n", 0o644)
	h.Write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n", 0o644)
	return h
}

func apply(t *testing.T, h *dt.Host, l v1.RenderedLayer) {
	t.Helper()
	a := oslayer.New(h.Env)
	act := engine.LayerAction{Op: engine.LayerApply, Layer: l, Key: l.Name}
	if done, err := a.Check(context.Background(), act); err != nil || done {
		t.Fatalf("Check before apply = %v, %v", done, err)
	}
	if err := a.Apply(context.Background(), act); err != nil {
		t.Fatal(err)
	}
	if done, err := a.Check(context.Background(), act); err != nil || !done {
		t.Fatalf("Check after apply = %v, %v", done, err)
	}
}

func TestApply(t *testing.T) {
	h := host(t)
	before := h.Snapshot()
	l := layer(t, nil)
	apply(t, h, l)
	h.Golden(t, "apply", "os layer ubuntu 22.04.5: first apply on an Ubuntu 22.04 host", before, h.Run.Calls())
}

func TestApplyReplacesTheEarlierVersion(t *testing.T) {
	h := host(t)
	apply(t, h, layer(t, nil))
	h.Run.Reset()
	before := h.Snapshot()
	apply(t, h, layer(t, func(v map[string]any) {
		v["caCerts"] = []any{map[string]any{"name": "registry", "content": "-----BEGIN CERTIFICATE-----\nMIIBregistry\n-----END CERTIFICATE-----\n"}}
		v["files"] = []any{}
		v["postKubernetesCommands"] = []any{}
		v["kernelModules"] = []any{"overlay", "br_netfilter", "iscsi_tcp"}
		v["users"] = []any{}
	}))
	h.Golden(t, "update", "os layer ubuntu 22.04.5: a new version replaces what the last one wrote", before, h.Run.Calls())
}

func TestRemove(t *testing.T) {
	h := host(t)
	l := layer(t, nil)
	apply(t, h, l)
	h.Run.Reset()
	before := h.Snapshot()
	a := oslayer.New(h.Env)
	act := engine.LayerAction{Op: engine.LayerRemove, Layer: l, Key: l.Name}
	if err := a.Remove(context.Background(), act); err != nil {
		t.Fatal(err)
	}
	if done, err := a.Check(context.Background(), act); err != nil || !done {
		t.Fatalf("Check after remove = %v, %v", done, err)
	}
	h.Golden(t, "remove", "os layer ubuntu 22.04.5: remove (packages, users, services and swap stay)", before, h.Run.Calls())
	if err := a.Remove(context.Background(), act); err != nil {
		t.Errorf("second remove: %v", err)
	}
}

func TestRefusesAnotherOS(t *testing.T) {
	h := host(t)
	h.Write("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n", 0o644)
	err := oslayer.New(h.Env).Apply(context.Background(), engine.LayerAction{Op: engine.LayerApply, Layer: layer(t, nil)})
	if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "is for ubuntu 22.04, but the host runs debian 12") {
		t.Fatalf("err = %v", err)
	}
	if len(h.Run.Calls()) != 0 {
		t.Errorf("commands ran on the wrong OS: %v", h.Run.Lines())
	}
}

func TestBadValues(t *testing.T) {
	for name, edit := range map[string]func(v map[string]any){
		"relative file": func(v map[string]any) { v["files"] = []any{map[string]any{"path": "etc/x", "content": "x"}} },
		"bad mode":      func(v map[string]any) { v["files"] = []any{map[string]any{"path": "/etc/x", "permissions": "rwx"}} },
		"bad owner":     func(v map[string]any) { v["files"] = []any{map[string]any{"path": "/etc/x", "owner": "root root"}} },
		"not a cert":    func(v map[string]any) { v["caCerts"] = []any{map[string]any{"name": "x", "content": "hello"}} },
		"cert name": func(v map[string]any) {
			v["caCerts"] = []any{map[string]any{"name": "../x", "content": "-----BEGIN CERTIFICATE-----"}}
		},
		"user name":        func(v map[string]any) { v["users"] = []any{map[string]any{"name": "Bad User"}} },
		"service state":    func(v map[string]any) { v["services"] = map[string]any{"x": "on"} },
		"no package tool":  func(v map[string]any) { v["packageManager"] = "pacman" },
		"values not yaml?": func(v map[string]any) { v["files"] = "nope" },
	} {
		t.Run(name, func(t *testing.T) {
			h := host(t)
			err := oslayer.New(h.Env).Apply(context.Background(), engine.LayerAction{Op: engine.LayerApply, Layer: layer(t, edit)})
			if err == nil || !engine.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
		})
	}
}

func TestSeedFileSpelling(t *testing.T) {
	h := host(t)
	l := layer(t, func(v map[string]any) {
		v["files"] = []any{map[string]any{
			"targetPath": "/usr/local/share/ca-certificates/mycom.crt", "targetOwner": "root:root", "targetPermissions": "0644",
			"content": "Certificate Content\n",
		}}
	})
	apply(t, h, l)
	data, err := h.Root.ReadFile("/usr/local/share/ca-certificates/mycom.crt")
	if err != nil || string(data) != "Certificate Content\n" {
		t.Errorf("file = %q, %v", data, err)
	}
	if !strings.Contains(strings.Join(h.Run.Lines(), "\n"), "chown root:root /usr/local/share/ca-certificates/mycom.crt") {
		t.Errorf("no chown:\n%s", strings.Join(h.Run.Lines(), "\n"))
	}
}

func TestOpenSUSE(t *testing.T) {
	h := dt.NewHost(t)
	h.Write("/etc/os-release", "ID=\"opensuse-leap\"\nVERSION_ID=\"15.6\"\n", 0o644)
	l := v1.RenderedLayer{Name: "opensuse-leap", Pack: "opensuse-leap", Layer: v1.LayerOS, Version: "15.6.0", Hash: "h1", Values: `
osRelease: {id: opensuse-leap, versionID: "15.6"}
packages: [conntrack-tools, socat]
caCerts:
  - name: site
    content: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
`}
	apply(t, h, l)
	got := strings.Join(h.Run.Lines(), "\n")
	if !strings.Contains(got, "zypper --non-interactive install --no-recommends conntrack-tools socat") {
		t.Errorf("commands:\n%s", got)
	}
	if !h.Env.Exists("/etc/pki/trust/anchors/outpost-os-site.crt") {
		t.Error("the CA certificate is not in openSUSE's anchors")
	}
}
