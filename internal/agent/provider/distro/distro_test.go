package distro

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
)

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.10.50":      "192.168.10.50:9345",
		"192.168.10.50:6443": "192.168.10.50:9345",
		"fd00::50":           "[fd00::50]:9345",
		"[fd00::50]":         "[fd00::50]:9345",
		"cp.store.example":   "cp.store.example:9345",
	} {
		if got := Endpoint(in, 9345); got != want {
			t.Errorf("Endpoint(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendList(t *testing.T) {
	m := map[string]any{"tls-san": "a.example, b.example", "node-taint": []any{"x=y:NoSchedule"}}
	AppendList(m, "tls-san", "10.0.0.1", "a.example")
	AppendList(m, "node-taint", CriticalAddonsOnly)
	AppendList(m, "new", "v")
	want := map[string][]any{
		"tls-san":    {"a.example", "b.example", "10.0.0.1"},
		"node-taint": {"x=y:NoSchedule", CriticalAddonsOnly},
		"new":        {"v"},
	}
	for k, w := range want {
		if !slices.Equal(m[k].([]any), w) {
			t.Errorf("%s = %v, want %v", k, m[k], w)
		}
	}
}

func TestRancherConfigKeepsUserDropIns(t *testing.T) {
	root := hostos.Root{Dir: t.TempDir()}
	e := Env{Root: root, Run: &hostexec.Recorder{}}.WithDefaults()
	c := RancherConfig{Pack: "k3s", Dir: "/etc/rancher/k3s", Port: 6443}
	mine := "/etc/rancher/k3s/config.yaml.d/90-site.yaml"
	if _, err := e.WriteFile(mine, []byte("kubelet-arg+: [max-pods=150]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WriteFile("/etc/rancher/k3s/config.yaml.d/50-old-preset.yaml", []byte("x: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := engine.DistroAction{Role: v1.RoleInit, Node: "n1", JoinToken: "t", Layer: v1.RenderedLayer{Pack: "k3s", Values: "configDropIns:\n  ha-etcd:\n    cluster-init: true\n"}}
	r, err := c.Render(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(&e, r); err != nil {
		t.Fatal(err)
	}
	if !e.Exists(mine) {
		t.Error("a drop-in the site put there by hand was removed")
	}
	if e.Exists("/etc/rancher/k3s/config.yaml.d/50-old-preset.yaml") {
		t.Error("the drop-in of a preset no longer chosen stayed")
	}
	if !e.Exists("/etc/rancher/k3s/config.yaml.d/50-ha-etcd.yaml") {
		t.Error("the ha-etcd drop-in is missing on the init node")
	}
	a.Role, a.JoinEndpoint = v1.RoleControlPlane, "10.0.0.1"
	if r, err = c.Render(a); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.DropIns["50-ha-etcd.yaml"]; ok {
		t.Error("a joining server got cluster-init from the ha-etcd preset")
	}
}

func TestMountsUnder(t *testing.T) {
	root := hostos.Root{Dir: t.TempDir()}
	e := Env{Root: root, Run: &hostexec.Recorder{}}.WithDefaults()
	mounts := strings.Join([]string{
		"/dev/sda1 / ext4 rw 0 0",
		"tmpfs /var/lib/kubelet/pods/a/volumes/x tmpfs rw 0 0",
		"tmpfs /var/lib/kubelet/pods/a/volumes/with\\040space tmpfs rw 0 0",
		"overlay /run/k3s/containerd/t/rootfs overlay rw 0 0",
		"shm /run/k3s/containerd/t/rootfs/dev/shm tmpfs rw 0 0",
		"nsfs /run/netns/cni-1234 nsfs rw 0 0",
		"nsfs /run/netns/other nsfs rw 0 0",
		"tmpfs /var/lib/kubeletx tmpfs rw 0 0",
	}, "\n")
	if err := root.WriteFileAtomic("/proc/self/mounts", []byte(mounts), 0o444); err != nil {
		t.Fatal(err)
	}
	got := e.mountsUnder(append([]string{"/run/k3s"}, KubeletMounts...))
	want := []string{
		"/run/k3s/containerd/t/rootfs/dev/shm",
		"/var/lib/kubelet/pods/a/volumes/with space",
		"/var/lib/kubelet/pods/a/volumes/x",
		"/run/k3s/containerd/t/rootfs",
		"/run/netns/cni-1234",
	}
	if !slices.Equal(got, want) {
		t.Errorf("mounts:\n got %q\nwant %q", got, want)
	}
}

func TestEnvFileQuoting(t *testing.T) {
	e := Env{ProxyEnv: []string{"HTTP_PROXY=http://user:p a$s@proxy:3128", "NO_PROXY=localhost"}}
	got := string(e.EnvFile())
	if !strings.Contains(got, `HTTP_PROXY="http://user:p a$s@proxy:3128"`) || !strings.Contains(got, "NO_PROXY=localhost\n") {
		t.Errorf("env file:\n%s", got)
	}
}

func TestKubernetesVersion(t *testing.T) {
	for _, tc := range []struct {
		l    v1.RenderedLayer
		want string
	}{
		{v1.RenderedLayer{Version: "1.32.3+k3s1"}, "1.32.3"},
		{v1.RenderedLayer{Version: "v1.30.4+rke2r1"}, "1.30.4"},
		{v1.RenderedLayer{Version: "1.33.1", KubernetesVersion: "1.33.1"}, "1.33.1"},
		{v1.RenderedLayer{Version: "1.32.3+k3s1", KubernetesVersion: "v1.32.3"}, "1.32.3"},
	} {
		if got := KubernetesVersion(tc.l); got != tc.want {
			t.Errorf("KubernetesVersion(%+v) = %s, want %s", tc.l, got, tc.want)
		}
	}
}

func TestWaitReadyStopsWithTheContext(t *testing.T) {
	r := &hostexec.Recorder{}
	r.On("kubectl", "False")
	e := Env{Root: hostos.Root{Dir: t.TempDir()}, Run: r}.WithDefaults()
	k := Kube{Env: &e, Kubectl: []string{"kubectl"}, Kubeconfig: "/k"}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := k.WaitReady(ctx, "n1"); err == nil {
		t.Fatal("WaitReady returned nil with the context gone")
	}
}

func TestInstallFileReplacesARunningBinary(t *testing.T) {
	dir := t.TempDir()
	e := Env{Root: hostos.Root{Dir: filepath.Join(dir, "root")}, Run: &hostexec.Recorder{}}.WithDefaults()
	src := filepath.Join(dir, "k3s")
	os.WriteFile(src, []byte("v2"), 0o644)
	if err := e.Root.WriteFileAtomic("/usr/local/bin/k3s", []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Keep the old file open, as a running process would.
	old, err := os.Open(e.Root.Path("/usr/local/bin/k3s"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	changed, err := e.InstallFile(src, "/usr/local/bin/k3s", ModeExec)
	if err != nil || !changed {
		t.Fatalf("InstallFile = %v, %v", changed, err)
	}
	if changed, _ := e.InstallFile(src, "/usr/local/bin/k3s", ModeExec); changed {
		t.Error("installing the same file again changed it")
	}
	data, _ := e.Root.ReadFile("/usr/local/bin/k3s")
	fi, _ := e.Root.Stat("/usr/local/bin/k3s")
	if string(data) != "v2" || fi.Mode().Perm() != 0o755 {
		t.Errorf("installed %q mode %v", data, fi.Mode())
	}
}

func TestExtractTarGz(t *testing.T) {
	dir := t.TempDir()
	e := Env{Root: hostos.Root{Dir: filepath.Join(dir, "root")}, Run: &hostexec.Recorder{}}.WithDefaults()
	write := func(name string, entries ...tarEntry) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, tarGz(entries...), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.tgz",
		tarEntry{name: "./bin/", dir: true},
		tarEntry{name: "./bin/tool", mode: 0o4755, body: "tool"},
		tarEntry{name: "./bin/alias", link: "tool"},
		tarEntry{name: "./share/doc", mode: 0o600, body: "doc"},
	)
	noDocs := func(n string) (string, bool) { return n, n != "share/doc" }
	files, changed, err := e.ExtractTarGz(good, "/usr/local", noDocs)
	if err != nil || !changed {
		t.Fatalf("extract = %v, %v", changed, err)
	}
	if want := []string{"/usr/local/bin/alias", "/usr/local/bin/tool"}; !slices.Equal(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
	if fi, err := e.Root.Stat("/usr/local/bin/tool"); err != nil || fi.Mode().Perm() != 0o755 || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("tool: %v %v (setuid must be dropped)", fi.Mode(), err)
	}
	if _, changed, _ := e.ExtractTarGz(good, "/usr/local", noDocs); changed {
		t.Error("extracting the same tarball again changed something")
	}
	for name, entries := range map[string][]tarEntry{
		"dotdot":        {{name: "../../etc/passwd", body: "x"}},
		"absolute link": {{name: "etc", link: "/etc"}},
		"escaping link": {{name: "bin/up", link: "../../../etc"}},
	} {
		if _, _, err := e.ExtractTarGz(write(name+".tgz", entries...), "/usr/local", nil); err == nil {
			t.Errorf("%s: extracted", name)
		}
	}
	if e.Exists("/etc/passwd") || e.Exists("/usr/local/etc") || e.Exists("/etc") {
		t.Error("an entry left /usr/local")
	}
}

type tarEntry struct {
	name, body, link string
	mode             int64
	dir              bool
}

func tarGz(entries ...tarEntry) []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		tw.WriteHeader(h)
		tw.Write([]byte(e.body))
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}
