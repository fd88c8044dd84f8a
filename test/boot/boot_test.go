package boot

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// howTo is what a person runs to get this test going.
const howTo = "apt-get install -y qemu-system-x86 xorriso && scripts/fetch-kernel.sh && make boot-test"

// readyTimeout is how long a guest may take from power-on to Ready under
// software emulation on a busy two-core machine; it usually needs 5-15 s.
const readyTimeout = 3 * time.Minute

// assets are the Debian files the image is made of (fetch-kernel.sh).
type assets struct {
	kernelDir, busybox, isolinuxDir string
}

// requirements returns QEMU and the cached assets, or skips.
func requirements(t *testing.T) (string, assets) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots VMs; run without -short: " + howTo)
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed: " + howTo)
	}
	script, err := filepath.Abs("../../scripts/fetch-kernel.sh")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(script, "--cached").Output()
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("the kernel, busybox and isolinux are not cached: " + howTo)
		}
		// CI has QEMU, so the test must run: fetch what it needs.
		cmd := exec.Command(script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if out, err = cmd.Output(); err != nil {
			t.Fatalf("scripts/fetch-kernel.sh: %v\n%s", err, stderr.String())
		}
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vars[k] = v
		}
	}
	a := assets{kernelDir: vars["KERNEL_DIR"], busybox: vars["BUSYBOX"], isolinuxDir: vars["ISOLINUX_DIR"]}
	if a.kernelDir == "" || a.busybox == "" || a.isolinuxDir == "" {
		t.Fatalf("scripts/fetch-kernel.sh printed no paths:\n%s", out)
	}
	return qemu, a
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds outpost and a static outpost-agent once, as the e2e
// harness does.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "outpost-boot-bin-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"outpost", "outpost-agent"} {
			cmd := exec.Command("go", "build", "-ldflags", "-X main.version=boot-test", "-o", filepath.Join(binDir, pkg), "../../cmd/"+pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %w\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a background process logging to a file.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func start(t *testing.T, logPath, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", filepath.Base(bin), err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return strings.ReplaceAll(string(b), "\r", "")
}

// tail is the end of a log, for failure messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lab is a hub on this machine that guests reach as 10.0.2.2.
type lab struct {
	dir       string
	bin       string
	config    string
	agentPort int
	caPEM     string
	token     string
	hub       *proc
}

func newLab(t *testing.T) *lab {
	bin := binaries(t)
	l := &lab{dir: t.TempDir(), bin: bin, agentPort: freePort(t)}
	apiPort := freePort(t)
	// The agent listener on 127.0.0.1 is what QEMU's user-mode network
	// forwards 10.0.2.2 to; --advertise puts 10.0.2.2 in the hub's
	// certificate, which is the address the guests dial.
	l.hub = start(t, filepath.Join(l.dir, "hub.log"), filepath.Join(bin, "outpost"), "server",
		"--listen", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"--agent-listen", fmt.Sprintf("127.0.0.1:%d", l.agentPort),
		"--advertise", "10.0.2.2",
		"--data-dir", filepath.Join(l.dir, "data"),
		"--admin-token-file", filepath.Join(l.dir, "admin-token"),
		"--heartbeat-interval", "2s", "--offline-after", "30s")
	caFile := filepath.Join(l.dir, "data", "pki", "ca.crt")
	l.config = filepath.Join(l.dir, "cli.yaml")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if l.hub.exited() {
			t.Fatalf("hub exited:\n%s", l.hub.output())
		}
		tok, err := os.ReadFile(filepath.Join(l.dir, "admin-token"))
		if err == nil {
			if _, err := l.run("login", "--server", fmt.Sprintf("https://127.0.0.1:%d", apiPort), "--token", strings.TrimSpace(string(tok)), "--ca-file", caFile); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub not ready after 30s:\n%s", l.hub.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	l.caPEM = string(ca)
	out := l.must(t, "tokens", "create", "boot-test", "--max-uses", "10")
	l.token = regexp.MustCompile(`ort_[A-Za-z0-9_]+`).FindString(out)
	if l.token == "" {
		t.Fatalf("no token in:\n%s", out)
	}
	return l
}

// run is the outpost CLI with the lab's config.
func (l *lab) run(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(l.bin, "outpost"), args...)
	cmd.Env = append(os.Environ(), "OUTPOST_CONFIG="+l.config)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("outpost %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (l *lab) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := l.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// settings writes site settings for this hub, with extra YAML appended.
func (l *lab) settings(t *testing.T, name, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hub:\n  url: https://10.0.2.2:%d\n  caCert: |\n", l.agentPort)
	for _, line := range strings.Split(strings.TrimRight(l.caPEM, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	fmt.Fprintf(&b, "registration:\n  token: %s\n%s", l.token, extra)
	p := filepath.Join(l.dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := l.must(t, "build", "validate", "-f", p)
	if !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("validate %s: %s", name, out)
	}
	return p
}

// build runs `outpost build ...` and returns how long it took.
func (l *lab) build(t *testing.T, args ...string) time.Duration {
	t.Helper()
	t0 := time.Now()
	l.must(t, append([]string{"build"}, args...)...)
	return time.Since(t0)
}

// host is the host's state in `hosts ls -o json`, or false.
func (l *lab) host(t *testing.T, id string) (v1.EdgeHost, bool) {
	out, err := l.run("hosts", "ls", "-o", "json")
	if err != nil {
		return v1.EdgeHost{}, false
	}
	var list struct {
		Items []v1.EdgeHost `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("hosts ls -o json: %v\n%s", err, out)
	}
	for _, h := range list.Items {
		if h.Metadata.Name == id {
			return h, true
		}
	}
	return v1.EdgeHost{}, false
}

// boot starts QEMU with args after the common ones and waits until host id
// is Ready and Healthy; it returns the host and the time from power-on.
func (l *lab) boot(t *testing.T, qemu, name, id string, args ...string) (v1.EdgeHost, time.Duration, *proc) {
	t.Helper()
	common := []string{
		"-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
		// romfile= leaves out the NIC's iPXE ROM: it would try to netboot
		// first, which costs seconds and sends DHCP and TFTP for nothing.
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile=",
		"-device", "virtio-rng-pci",
	}
	t0 := time.Now()
	vm := start(t, filepath.Join(l.dir, name+".console.log"), qemu, append(common, args...)...)
	deadline := t0.Add(readyTimeout)
	last := "not enrolled"
	for time.Now().Before(deadline) {
		if vm.exited() {
			t.Fatalf("%s: QEMU exited: last console lines:\n%s", name, tail(vm.output(), 40))
		}
		if h, ok := l.host(t, id); ok {
			last = h.Status.State + "/" + h.Status.Health
			if h.Status.State == v1.HostReady && h.Status.Health == v1.HealthHealthy {
				return h, time.Since(t0), vm
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: host %s not Ready and Healthy within %s (last: %s); console:\n%s\nhub:\n%s",
		name, id, readyTimeout, last, tail(vm.output(), 60), tail(l.hub.output(), 20))
	return v1.EdgeHost{}, 0, nil
}

func machineID(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestIntegrationBoot boots the image three ways: the kernel and initramfs
// directly with a cidata seed (what a VM platform does with `build
// cidata`), the ISO with its baked settings, and the ISO remastered by
// `build installer` with other settings and a static network.
func TestIntegrationBoot(t *testing.T) {
	qemu, a := requirements(t)
	l := newLab(t)
	agent := filepath.Join(l.bin, "outpost-agent")
	common := []string{"iso", "--kernel-dir", a.kernelDir, "--busybox", a.busybox, "--agent", agent}
	var times []string
	report := func(format string, args ...any) {
		times = append(times, fmt.Sprintf(format, args...))
		t.Logf(format, args...)
	}
	defer func() {
		fmt.Printf("boot test timings:\n  %s\n", strings.Join(times, "\n  "))
	}()

	t.Run("kernel+seed", func(t *testing.T) {
		dir := t.TempDir()
		initrd, vmlinuz, seed := filepath.Join(dir, "initrd.img"), filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "seed.iso")
		d := l.build(t, append(common, "--initramfs-only", initrd, "--out-kernel", vmlinuz)...)
		report("build initramfs (no settings): %s", d.Round(time.Millisecond))
		site := l.settings(t, "seed.yaml", "host:\n  name: Boot seed\n  labels: {boot: seed}\n")
		d = l.build(t, "cidata", "--user-data", site, "--hostname", "boot-seed", "-o", seed)
		report("build cidata: %s", d.Round(time.Millisecond))

		mid := machineID(t)
		h, took, vm := l.boot(t, qemu, "kernel+seed", "edge-"+mid,
			"-kernel", vmlinuz, "-initrd", initrd,
			"-append", "console=ttyS0 quiet panic=-1 outpost.machine_id="+mid,
			"-drive", "file="+seed+",media=cdrom,readonly=on")
		report("kernel+initramfs+seed: power-on to Ready %s", took.Round(100*time.Millisecond))
		console := vm.output()
		if !strings.Contains(console, "settings from seed /dev/sr0 (outpost.yaml)") {
			t.Errorf("settings not from the seed:\n%s", tail(console, 30))
		}
		if inv := h.Status.Inventory; inv == nil || inv.Hostname != "boot-seed" || inv.OS.Name != "Outpost boot image" {
			t.Errorf("inventory %+v", inv)
		}
		if h.Metadata.Labels["boot"] != "seed" || h.Spec.DisplayName != "Boot seed" {
			t.Errorf("labels %v, name %q", h.Metadata.Labels, h.Spec.DisplayName)
		}
	})

	outpostISO := filepath.Join(t.TempDir(), "outpost.iso")
	isoOK := t.Run("iso", func(t *testing.T) {
		site := l.settings(t, "iso.yaml", "host:\n  labels: {boot: iso}\n")
		mid := machineID(t)
		d := l.build(t, append(common, "--user-data", site, "--isolinux", a.isolinuxDir,
			"--append", "outpost.machine_id="+mid+" outpost.cidata_wait=1", "-o", outpostISO)...)
		report("build iso: %s", d.Round(time.Millisecond))
		h, took, vm := l.boot(t, qemu, "iso", "edge-"+mid, "-cdrom", outpostISO, "-boot", "order=d,menu=off")
		report("ISO (BIOS, ISOLINUX): power-on to Ready %s", took.Round(100*time.Millisecond))
		console := vm.output()
		if !strings.Contains(console, "ISOLINUX") || !strings.Contains(console, "settings from boot medium /dev/sr0") {
			t.Errorf("not booted by ISOLINUX with the medium's settings:\n%s", tail(console, 30))
		}
		if h.Metadata.Labels["boot"] != "iso" {
			t.Errorf("labels %v", h.Metadata.Labels)
		}
	})

	t.Run("installer", func(t *testing.T) {
		if !isoOK {
			t.Skip("no ISO to remaster")
		}
		if _, err := exec.LookPath("xorriso"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("xorriso not found; CI must install it (apt-get install -y xorriso)")
			}
			t.Skip("xorriso not found: " + howTo)
		}
		// Other settings than the ISO's: a fixed ID and a static address
		// where QEMU's DHCP would have given the same, so the network file
		// is what configured it.
		site := l.settings(t, "installer.yaml", "host:\n  id: boot-installer\n  labels: {boot: installer}\n"+
			"network:\n  interfaces:\n    eth0: {type: static, address: 10.0.2.15/24, gateway: 10.0.2.2}\n")
		installer := filepath.Join(t.TempDir(), "installer.iso")
		d := l.build(t, "installer", "--base", outpostISO, "--user-data", site, "-o", installer)
		report("build installer (remaster): %s", d.Round(time.Millisecond))
		h, took, vm := l.boot(t, qemu, "installer", "boot-installer", "-cdrom", installer, "-boot", "order=d,menu=off")
		report("remastered ISO, static network: power-on to Ready %s", took.Round(100*time.Millisecond))
		console := vm.output()
		if !strings.Contains(console, "outpost-init: eth0: 10.0.2.15/24 via 10.0.2.2\n") || strings.Contains(console, "udhcpc") {
			t.Errorf("eth0 not configured statically:\n%s", tail(console, 30))
		}
		if h.Metadata.Labels["boot"] != "installer" {
			t.Errorf("labels %v", h.Metadata.Labels)
		}
	})
	if t.Failed() {
		t.Logf("hub log:\n%s", tail(l.hub.output(), 30))
	}
}
