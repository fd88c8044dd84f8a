package distrotest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/provider/distro"
	"github.com/outpost-edge/outpost/internal/agent/provider/fetch"
	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
	"github.com/outpost-edge/outpost/internal/agent/provider/oslayer"
	"github.com/outpost-edge/outpost/internal/catalog"
	"github.com/outpost-edge/outpost/internal/profile"
)

// Update rewrites golden files instead of comparing with them.
var Update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The cluster every contract test builds.
const (
	Cluster   = "store-berlin"
	VIP       = "192.168.10.50"
	JoinToken = "3f6c1a0e9b2d4c7a8e5f1b3d6a9c2e4f7b1d3a5c8e0f2a4b"
	InitNode  = "edge-cp1"
	CPNode    = "edge-cp2"
	Worker    = "edge-w1"
)

// ProxyEnv is the site proxy the contract tests give the providers.
var ProxyEnv = []string{
	"HTTP_PROXY=http://proxy.store-berlin.example:3128",
	"HTTPS_PROXY=http://proxy.store-berlin.example:3128",
	"NO_PROXY=localhost,127.0.0.1,192.168.10.0/24,10.42.0.0/16,10.43.0.0/16,.svc,.cluster.local",
}

// Profile is an infra profile of the built-in catalog with the distro
// pack at version, Ubuntu with the seed's CA certificate, file and hook
// commands, Calico and local-path.
func Profile(pack, version string) string {
	return `apiVersion: outpost.dev/v1
kind: ClusterProfile
metadata:
  name: contract-` + pack + `
spec:
  type: infra
  version: 1.0.0
  layers:
    - pack: ubuntu
      version: 22.04.5
      values: |
        caCerts:
          - name: store-proxy
            content: |
              -----BEGIN CERTIFICATE-----
              MIIBfake0000000000000000000000000000000000000000000000000000000
              -----END CERTIFICATE-----
        files:
          - path: /etc/outpost-site/site.conf
            owner: "root:root"
            permissions: "0640"
            content: |
              site=store-berlin
        preKubernetesCommands:
          - echo "Executing pre kube admin config commands"
          - update-ca-certificates
        postKubernetesCommands:
          - echo "Executing post kube admin config commands"
    - pack: ` + pack + `
      version: ` + version + `
    - pack: calico
      version: 3.30.0
    - pack: local-path
      version: 0.0.30
`
}

type packs map[string]*v1.Pack

func (p packs) Pack(registry, name string) (*v1.Pack, error) {
	if pk, ok := p[name]; ok && (registry == "" || registry == v1.RegistryBuiltin) {
		return pk, nil
	}
	return nil, fmt.Errorf("pack %q is not in the built-in catalog", name)
}

// Render renders a profile against the built-in catalog, as the hub does
// for a host, and returns its OS and k8s layers.
func Render(t testing.TB, profileYAML string) (osLayer, k8s v1.RenderedLayer) {
	t.Helper()
	list, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	ps := packs{}
	for i := range list {
		ps[list[i].Spec.Name] = &list[i]
	}
	p, err := profile.Decode([]byte(profileYAML))
	if err != nil {
		t.Fatal(err)
	}
	r, err := profile.Render(p, ps, profile.RenderOptions{Resolver: catalog.Resolve})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range r.Layers {
		switch l.Layer {
		case v1.LayerOS:
			osLayer = l
		case v1.LayerK8s:
			k8s = l
		}
	}
	return osLayer, k8s
}

// Host is a temporary root with a recording runner and a fake hub
// artifact cache.
type Host struct {
	T    testing.TB
	Root hostos.Root
	Run  *hostexec.Recorder
	Env  distro.Env

	mu        sync.Mutex
	artifacts map[string][]byte
	checksums map[string][]v1.Artifact
	sleeps    int
}

// NewHost makes a host whose artifacts come from a fake hub cache.
func NewHost(t testing.TB) *Host {
	h := &Host{
		T:         t,
		Root:      hostos.Root{Dir: t.TempDir()},
		Run:       &hostexec.Recorder{},
		artifacts: map[string][]byte{},
		checksums: map[string][]v1.Artifact{},
	}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	h.Env = distro.Env{
		Root: h.Root,
		Run:  h.Run,
		Fetch: &fetch.Fetcher{
			Client:   srv.Client(),
			CacheURL: srv.URL + fetch.CachePath,
			Root:     h.Root,
		},
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Arch:         "amd64",
		ProxyEnv:     ProxyEnv,
		PollInterval: time.Millisecond,
		Sleep:        h.sleep,
	}
	return h
}

// sleep returns at once, and gives up after many calls, so that a wait
// the script never satisfies fails the test instead of spinning.
func (h *Host) sleep(ctx context.Context, _ time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sleeps++
	return ctx.Err() == nil && h.sleeps < 1000
}

// serve is the hub's artifact cache: ?url= names an artifact or a
// checksum file.
func (h *Host) serve(w http.ResponseWriter, r *http.Request) {
	u := r.URL.Query().Get("url")
	h.mu.Lock()
	defer h.mu.Unlock()
	if body, ok := h.artifacts[u]; ok {
		w.Write(body)
		return
	}
	arts, ok := h.checksums[u]
	if !ok {
		http.Error(w, "upstream: 404 Not Found", http.StatusBadGateway)
		return
	}
	if pu, _ := url.Parse(u); pu != nil && pu.Host == "dl.k8s.io" {
		// dl.k8s.io's <binary>.sha256: the bare hash.
		fmt.Fprintln(w, sum(h.artifacts[arts[0].URL]))
		return
	}
	var lines []string
	for _, a := range arts {
		name, _ := catalog.ArtifactFileName(a.URL)
		lines = append(lines, sum(h.artifacts[a.URL])+"  "+name+"\n")
	}
	sort.Strings(lines)
	io.WriteString(w, strings.Join(lines, ""))
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Serve makes the cache serve every artifact of l, with content from
// content (nil: FakeBinary), and their checksum files.
func (h *Host) Serve(l v1.RenderedLayer, content func(v1.Artifact) []byte) {
	if content == nil {
		content = FakeBinary
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range l.Artifacts {
		h.artifacts[a.URL] = content(a)
		if a.ChecksumURL != "" && !slices.ContainsFunc(h.checksums[a.ChecksumURL], func(x v1.Artifact) bool { return x.URL == a.URL }) {
			h.checksums[a.ChecksumURL] = append(h.checksums[a.ChecksumURL], a)
		}
	}
}

// FakeBinary is a small shell script standing for a binary artifact. It
// names the artifact's URL, so that two versions of a pack that share an
// artifact (kubeadm's runc) get the same bytes, as they would upstream.
func FakeBinary(a v1.Artifact) []byte {
	return []byte("#!/bin/sh\n# fake " + a.Name + " for the provider contract tests, standing for\n# " + a.URL + "\n")
}

// TarEntry is one file of a fake tarball; a Link makes a symlink.
type TarEntry struct {
	Name string
	Mode int64
	Body string
	Link string
}

// TarGz makes a gzipped tarball that is byte-for-byte the same at every
// run (no times, no compression), so that golden files can show its sum.
func TarGz(entries ...TarEntry) []byte {
	var b bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&b, gzip.NoCompression)
	tw := tar.NewWriter(gz)
	epoch := time.Unix(0, 0).UTC()
	for _, e := range entries {
		hd := &tar.Header{Name: e.Name, Mode: e.Mode, ModTime: epoch, Format: tar.FormatUSTAR, Uname: "root", Gname: "root"}
		switch {
		case strings.HasSuffix(e.Name, "/"):
			hd.Typeflag = tar.TypeDir
		case e.Link != "":
			hd.Typeflag, hd.Linkname = tar.TypeSymlink, e.Link
		default:
			hd.Typeflag, hd.Size = tar.TypeReg, int64(len(e.Body))
		}
		tw.WriteHeader(hd)
		tw.Write([]byte(e.Body))
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

// Write puts a file on the host (a fixture, or what a running distro
// would have made).
func (h *Host) Write(p, content string, mode os.FileMode) {
	h.T.Helper()
	if err := h.Root.WriteFileAtomic(p, []byte(content), mode); err != nil {
		h.T.Fatal(err)
	}
}

// Running puts on the host what a running cluster node has that the
// provider does not write itself: mounts (the kubelet's and the given
// ones), CNI interfaces and the given files (0600).
func (h *Host) Running(mounts []string, files map[string]string) {
	var extra []string
	for _, p := range mounts {
		extra = append(extra, "overlay "+strings.ReplaceAll(p, " ", `\040`)+" overlay rw 0 0\n")
	}
	h.Write("/proc/self/mounts", strings.Join([]string{
		"/dev/sda1 / ext4 rw,relatime 0 0",
		"tmpfs /run tmpfs rw,nosuid,nodev 0 0",
		"tmpfs /var/lib/kubelet/pods/6f1c2a/volumes/kubernetes.io~projected/kube-api-access-x2m9p tmpfs rw 0 0",
		"nsfs /run/netns/cni-3b1e9f0a-7c2d-4e11-9a8b-5d6c7e8f9a0b nsfs rw 0 0",
		"",
	}, "\n")+strings.Join(extra, ""), 0o444)
	for _, ifc := range []string{"lo", "eth0", "vxlan.calico", "cali1f2e3d4c5b6"} {
		if err := h.Root.MkdirAll("/sys/class/net/"+ifc, 0o755); err != nil {
			h.T.Fatal(err)
		}
	}
	keys := make([]string, 0, len(files))
	for p := range files {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	for _, p := range keys {
		h.Write(p, files[p], 0o600)
	}
}

// IPTablesSave is what iptables-save prints on a node of the cluster: the
// site's own rule and the cluster's.
const IPTablesSave = `# Generated by iptables-save v1.8.7 on Tue Jun  3 10:00:00 2025
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:cali-INPUT - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -m comment --comment "cali:Cz_u1IQiXIMmKD4c" -j cali-INPUT
-A INPUT -p tcp --dport 22 -s 192.168.10.0/24 -j ACCEPT
COMMIT
`

// Scenario is one action of a contract test.
type Scenario struct {
	// Name is the golden file's name (init, join-control-plane, …).
	Name  string
	Title string
	// Setup prepares the host before the snapshot: the OS layer, an
	// earlier install. Its commands are not part of the golden file.
	Setup func(h *Host)
	// Script gives the runner its answers for the action.
	Script func(r *hostexec.Recorder)
	Action engine.DistroAction
}

// Contract runs a scenario against the provider newProvider makes and
// compares what it did with testdata/<name>.golden: Check must say the
// action is not done before Apply, and done after it.
func Contract(t *testing.T, newProvider func(distro.Env) engine.Distro, sc Scenario) {
	t.Helper()
	h := NewHost(t)
	if sc.Setup != nil {
		sc.Setup(h)
	}
	h.Run.Reset()
	if sc.Script != nil {
		sc.Script(h.Run)
	}
	p := newProvider(h.Env)
	ctx := context.Background()
	if done, err := p.Check(ctx, sc.Action); err != nil || done {
		t.Fatalf("Check before %s = %v, %v; want false", sc.Name, done, err)
	}
	before := h.Snapshot()
	if err := p.Apply(ctx, sc.Action); err != nil {
		t.Fatalf("%s: %v\ncommands:\n%s", sc.Name, err, strings.Join(h.Run.Lines(), "\n"))
	}
	calls := h.Run.Calls()
	if done, err := p.Check(ctx, sc.Action); err != nil || !done {
		t.Errorf("Check after %s = %v, %v; want true", sc.Name, done, err)
	}
	h.Golden(t, sc.Name, sc.Title, before, calls)
}

// Entry is a file, directory or symlink of a snapshot.
type Entry struct {
	Mode  os.FileMode
	Dir   bool
	Empty bool
	Link  string
	Data  []byte
}

// Snapshot is the host's files by host path, without /proc and /sys.
type Snapshot map[string]Entry

// Snapshot reads every file under the root.
func (h *Host) Snapshot() Snapshot {
	h.T.Helper()
	s := Snapshot{}
	base := h.Root.Path("/")
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		hp := "/" + filepath.ToSlash(rel)
		if hp == "/proc" || hp == "/sys" {
			return filepath.SkipDir
		}
		if hp == "/" {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			s[hp] = Entry{Mode: fi.Mode(), Link: target}
		case fi.IsDir():
			entries, _ := os.ReadDir(p)
			s[hp] = Entry{Mode: fi.Mode(), Dir: true, Empty: len(entries) == 0}
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s[hp] = Entry{Mode: fi.Mode(), Data: data}
		}
		return nil
	})
	if err != nil {
		h.T.Fatal(err)
	}
	return s
}

func isUnit(p string) bool {
	for _, dir := range []string{"/etc/systemd/system/", "/usr/local/lib/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/"} {
		rest, ok := strings.CutPrefix(p, dir)
		if !ok {
			continue
		}
		if !strings.Contains(rest, "/") {
			return strings.HasSuffix(rest, ".service") || strings.HasSuffix(rest, ".timer") || strings.HasSuffix(rest, ".socket")
		}
		d, f, _ := strings.Cut(rest, "/")
		return strings.HasSuffix(d, ".d") && strings.HasSuffix(f, ".conf")
	}
	return false
}

// unitName is the unit a unit file or drop-in belongs to.
func unitName(p string) string {
	if d := path.Base(path.Dir(p)); strings.HasSuffix(d, ".d") && strings.Contains(d, ".") {
		return strings.TrimSuffix(d, ".d")
	}
	return path.Base(p)
}

// Golden renders the action and compares it with testdata/<name>.golden.
func (h *Host) Golden(t *testing.T, name, title string, before Snapshot, calls []hostexec.Cmd) {
	t.Helper()
	after := h.Snapshot()
	got := RenderGolden(title, before, after, calls, h.Env.Fetch.Dir)
	file := filepath.Join("testdata", name+".golden")
	if *Update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run the tests with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from what the provider did now (run with -update and read the diff):\n%s", file, diff(string(want), got))
	}
}

// RenderGolden is the golden text of an action.
func RenderGolden(title string, before, after Snapshot, calls []hostexec.Cmd, cacheDir string) string {
	if cacheDir == "" {
		cacheDir = fetch.DefaultDir
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", title)
	b.WriteString("# Rewrite with: go test ./internal/agent/provider/... -update\n")

	b.WriteString("\n== commands\n")
	verbs := map[string][]string{}
	for _, c := range calls {
		b.WriteString(c.String() + "\n")
		if c.Stdin != "" {
			for _, l := range strings.Split(strings.TrimSuffix(c.Stdin, "\n"), "\n") {
				b.WriteString(strings.TrimRight("    <<< "+l, " ") + "\n")
			}
		}
		if c.Name == "systemctl" && len(c.Args) > 0 {
			var flags, units []string
			for _, a := range c.Args[1:] {
				if strings.HasPrefix(a, "-") {
					flags = append(flags, a)
				} else {
					units = append(units, a)
				}
			}
			verb := strings.Join(append([]string{c.Args[0]}, flags...), " ")
			for _, u := range units {
				verbs[u] = append(verbs[u], verb)
			}
		}
	}

	paths := map[string]bool{}
	for p := range before {
		paths[p] = true
	}
	for p := range after {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)

	status := func(p string) string {
		a, inA := after[p]
		o, inB := before[p]
		switch {
		case !inA:
			return "removed"
		case !inB:
			return "new"
		case a.Mode != o.Mode || a.Link != o.Link || !bytes.Equal(a.Data, o.Data):
			return "changed"
		}
		return "unchanged"
	}

	b.WriteString("\n== systemd units\n")
	seen := map[string]bool{}
	wrote := false
	for _, p := range sorted {
		if !isUnit(p) {
			continue
		}
		st := status(p)
		u := unitName(p)
		v := verbs[u]
		if path.Base(p) != u {
			v = nil // drop-ins: the verbs go with the unit file
		} else {
			seen[u] = true
		}
		if st == "unchanged" && len(v) == 0 {
			continue
		}
		wrote = true
		line := p
		if e, ok := after[p]; ok {
			line += fmt.Sprintf("  %04o", e.Mode.Perm())
		}
		line += "  " + st
		if len(v) > 0 {
			line += "  [systemctl " + strings.Join(v, ", ") + "]"
		}
		b.WriteString(line + "\n")
		if st == "new" || st == "changed" {
			writeContent(&b, after[p], false)
		}
	}
	var loose []string
	for u := range verbs {
		if !seen[u] {
			loose = append(loose, u)
		}
	}
	sort.Strings(loose)
	for _, u := range loose {
		wrote = true
		fmt.Fprintf(&b, "%s  (no unit file written by the provider)  [systemctl %s]\n", u, strings.Join(verbs[u], ", "))
	}
	if !wrote {
		b.WriteString("(none)\n")
	}

	b.WriteString("\n== files\n")
	wrote = false
	for _, p := range sorted {
		st := status(p)
		e := after[p]
		// Directories show only when the action left a new one empty:
		// the files say where the others are.
		if isUnit(p) || st == "unchanged" || st == "removed" || (e.Dir && (st != "new" || !e.Empty)) {
			continue
		}
		wrote = true
		switch {
		case e.Dir:
			fmt.Fprintf(&b, "%s/  %04o  dir (empty)  %s\n", p, e.Mode.Perm(), st)
		case e.Link != "":
			fmt.Fprintf(&b, "%s -> %s  %s\n", p, e.Link, st)
		default:
			fmt.Fprintf(&b, "%s  %04o  %s\n", p, e.Mode.Perm(), st)
			writeContent(&b, e, strings.HasPrefix(p, cacheDir+"/"))
		}
	}
	if !wrote {
		b.WriteString("(none)\n")
	}

	b.WriteString("\n== removed\n")
	wrote = false
	for _, p := range sorted {
		if status(p) != "removed" {
			continue
		}
		e := before[p]
		if e.Dir {
			// A removed tree shows once, at its top.
			if _, parentStays := after[path.Dir(p)]; !parentStays && path.Dir(p) != "/" {
				continue
			}
			p += "/"
		}
		wrote = true
		b.WriteString(p)
		if isUnit(p) {
			b.WriteString("  (unit)")
		}
		b.WriteString("\n")
	}
	if !wrote {
		b.WriteString("(none)\n")
	}
	return b.String()
}

func writeContent(b *strings.Builder, e Entry, digestOnly bool) {
	if digestOnly || !utf8.Valid(e.Data) || bytes.IndexByte(e.Data, 0) >= 0 {
		fmt.Fprintf(b, "  sha256:%s (%d bytes)\n", sum(e.Data), len(e.Data))
		return
	}
	text := strings.TrimSuffix(string(e.Data), "\n")
	for _, l := range strings.Split(text, "\n") {
		b.WriteString(strings.TrimRight("  | "+l, " ") + "\n")
	}
	if !strings.HasSuffix(string(e.Data), "\n") && len(e.Data) > 0 {
		b.WriteString("  (no newline at end)\n")
	}
}

// diff shows the first lines that differ, with a little context.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	from := max(i-3, 0)
	var b strings.Builder
	for j := from; j < i; j++ {
		b.WriteString("  " + w[j] + "\n")
	}
	for j := i; j < min(i+8, len(w)); j++ {
		b.WriteString("- " + w[j] + "\n")
	}
	for j := i; j < min(i+8, len(g)); j++ {
		b.WriteString("+ " + g[j] + "\n")
	}
	return b.String()
}

// OSRelease is the host's /etc/os-release: Ubuntu 22.04, which the
// contract's OS layer is for.
const OSRelease = `PRETTY_NAME="Ubuntu 22.04.5 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.5 LTS (Jammy Jellyfish)"
ID=ubuntu
ID_LIKE=debian
`

// ApplyOS puts the OS layer on the host with its own runner, as the engine
// does before the distro: the hook scripts are then there for the
// provider to run.
func (h *Host) ApplyOS(l v1.RenderedLayer) {
	h.T.Helper()
	h.Write("/etc/os-release", OSRelease, 0o644)
	env := h.Env
	env.Run = &hostexec.Recorder{}
	l.Layer = v1.LayerOS
	if err := oslayer.New(env).Apply(context.Background(), engine.LayerAction{Op: engine.LayerApply, Layer: l, Key: l.Name}); err != nil {
		h.T.Fatal(err)
	}
}

// Action is the contract cluster's install action for a node of role.
func Action(role string, l v1.RenderedLayer) engine.DistroAction {
	a := engine.DistroAction{Op: engine.DistroInstall, Layer: l, Cluster: Cluster, Role: role, JoinToken: JoinToken, VIP: VIP}
	switch role {
	case v1.RoleInit:
		a.Node = InitNode
	case v1.RoleControlPlane:
		a.Node, a.JoinEndpoint = CPNode, VIP
	default:
		a.Node, a.JoinEndpoint = Worker, VIP
	}
	return a
}

// Upgrade is the action that takes a node of role from one layer to
// another.
func Upgrade(role string, from, to v1.RenderedLayer) engine.DistroAction {
	a := Action(role, to)
	a.Op, a.From = engine.DistroUpgrade, &from
	return a
}

// Remove is the action that takes a node of role with layer l away.
func Remove(role string, l v1.RenderedLayer) engine.DistroAction {
	a := Action(role, l)
	a.Op = engine.DistroRemove
	return a
}

// Install applies a with p, with no answers scripted beyond script, and
// fails the test if it does not work.
func (h *Host) Install(p engine.Distro, a engine.DistroAction, script func(*hostexec.Recorder)) {
	h.T.Helper()
	h.Run.Reset()
	if script != nil {
		script(h.Run)
	}
	if err := p.Apply(context.Background(), a); err != nil {
		h.T.Fatalf("install %s as %s: %v", a.Pack(), a.Role, err)
	}
	h.Run.Reset()
}

// Hash stands for a layer's content hash in tests that edit a layer.
func Hash(s string) string { return sum([]byte(s)) }
