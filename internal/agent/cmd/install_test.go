package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// recorder is a runner that records commands and fails on request.
type recorder struct {
	cmds [][]string
	fail error
}

func (r *recorder) Run(_ context.Context, name string, args ...string) error {
	r.cmds = append(r.cmds, append([]string{name}, args...))
	return r.fail
}

const ourUserData = "hub:\n  url: https://hub.example.com:7443\n# a comment that must survive\nhost: {idPrefix: shop-}\n"

const stylusUserData = `#cloud-config
stylus:
  site:
    paletteEndpoint: hub.example.com
    edgeHostToken: rt_abc
  debug: true
stages:
  initramfs:
    - users:
        kairos:
          passwd: kairos
`

func setup(t *testing.T, userData string) (installOptions, *recorder, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	ud := filepath.Join(dir, "user-data.yaml")
	if err := os.WriteFile(ud, []byte(userData), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "outpost-agent-build")
	if err := os.WriteFile(exe, []byte("\x7fELF agent"), 0o700); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	var out, warn bytes.Buffer
	return installOptions{
		userData:   ud,
		root:       hostos.Root{Dir: filepath.Join(dir, "root")},
		binDir:     DefaultBinDir,
		start:      true,
		executable: exe,
		run:        rec,
		out:        &out,
		warn:       &warn,
	}, rec, &out, &warn
}

func checkFile(t *testing.T, p string, mode os.FileMode, content string) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s mode %o, want %o", p, st.Mode().Perm(), mode)
	}
	if content != "" {
		if b, _ := os.ReadFile(p); string(b) != content {
			t.Errorf("%s =\n%s\nwant\n%s", p, b, content)
		}
	}
}

func TestInstall(t *testing.T) {
	o, rec, out, warn := setup(t, ourUserData)
	if err := install(context.Background(), o); err != nil {
		t.Fatalf("install: %v", err)
	}
	root := o.root
	checkFile(t, root.Path("/usr/local/bin/outpost-agent"), 0o755, "\x7fELF agent")
	// Our own format is installed as written, comments and all.
	checkFile(t, root.Path(DefaultUserDataPath), 0o600, ourUserData)
	checkFile(t, root.Path("/etc/outpost"), 0o700, "")
	checkFile(t, root.Path(UnitPath), 0o644, `[Unit]
Description=Outpost edge agent
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/local/bin/outpost-agent run --user-data /etc/outpost/user-data.yaml
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`)
	want := [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "enable", "--now", "outpost-agent"}}
	if !reflect.DeepEqual(rec.cmds, want) {
		t.Errorf("commands = %q, want %q", rec.cmds, want)
	}
	if !strings.Contains(out.String(), "started outpost-agent.service") || warn.Len() != 0 {
		t.Errorf("out %q warn %q", out, warn)
	}
	leftovers, _ := filepath.Glob(root.Path("/usr/local/bin/.outpost-agent.*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// Again, as an upgrade would, with another bin dir: files are replaced.
	o.binDir = "/opt/outpost/bin"
	if err := install(context.Background(), o); err != nil {
		t.Fatalf("second install: %v", err)
	}
	checkFile(t, root.Path("/opt/outpost/bin/outpost-agent"), 0o755, "\x7fELF agent")
	if b, _ := os.ReadFile(root.Path(UnitPath)); !strings.Contains(string(b), "ExecStart=/opt/outpost/bin/outpost-agent run") {
		t.Errorf("unit not updated:\n%s", b)
	}
}

func TestInstallConvertsStylus(t *testing.T) {
	o, _, _, warn := setup(t, stylusUserData)
	if err := install(context.Background(), o); err != nil {
		t.Fatalf("install: %v", err)
	}
	data, err := os.ReadFile(o.root.Path(DefaultUserDataPath))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# Converted by outpost-agent install") {
		t.Errorf("no header:\n%s", data)
	}
	// What `run` will read: our format, with the settings carried over.
	ud, err := userdata.Parse(data)
	if err != nil {
		t.Fatalf("installed user-data does not parse: %v\n%s", err, data)
	}
	if ud.Hub.URL != "https://hub.example.com:7443" || ud.Registration.Token != "rt_abc" ||
		len(ud.Users) != 1 || !strings.HasPrefix(ud.Users[0].Passwd, "$6$") {
		t.Errorf("converted = %+v", ud)
	}
	for _, w := range []string{"warning: " + o.userData + ": stylus.debug: ignored", "stages.initramfs[0].users.kairos.passwd: plain password"} {
		if !strings.Contains(warn.String(), w) {
			t.Errorf("warnings %q lack %q", warn, w)
		}
	}
}

func TestInstallFails(t *testing.T) {
	tests := []struct {
		name     string
		userData string
		edit     func(*installOptions, *recorder)
		msg      string
		files    bool // whether files were installed before the failure
	}{
		{"invalid user-data", "hub: {url: http://hub}\n", nil, "hub.url: must be an https:// URL", false},
		{"invalid stylus user-data", "#cloud-config\nstylus:\n  site:\n    name: Not/An/ID\n", nil,
			"hub.url: is required (from stylus.site.paletteEndpoint)", false},
		{"relative bin dir", ourUserData, func(o *installOptions, _ *recorder) { o.binDir = "bin" }, `--bin-dir "bin" must be an absolute path`, false},
		{"no systemd", ourUserData, func(_ *installOptions, r *recorder) {
			r.fail = fmt.Errorf("systemctl daemon-reload: %w", exec.ErrNotFound)
		}, "this host has no systemd; start /usr/local/bin/outpost-agent run --user-data /etc/outpost/user-data.yaml with its init system", true},
		{"systemctl fails", ourUserData, func(_ *installOptions, r *recorder) {
			r.fail = errors.New("systemctl daemon-reload: exit status 1")
		}, "systemctl daemon-reload: exit status 1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, rec, _, _ := setup(t, tt.userData)
			if tt.edit != nil {
				tt.edit(&o, rec)
			}
			err := install(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
			_, statErr := os.Stat(o.root.Path(UnitPath))
			if (statErr == nil) != tt.files {
				t.Errorf("unit installed = %v, want %v", statErr == nil, tt.files)
			}
		})
	}
}

// Through the command line with a --root: the files are installed and the
// systemctl commands printed, not run.
func TestInstallCommand(t *testing.T) {
	dir := t.TempDir()
	ud := filepath.Join(dir, "ud.yaml")
	os.WriteFile(ud, []byte(ourUserData), 0o644)
	root := filepath.Join(dir, "root")
	var out, errOut bytes.Buffer
	code := Execute("v1", []string{"install", "--user-data", ud, "--root", root, "--bin-dir", "/usr/bin"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, s := range []string{"installed /usr/bin/outpost-agent", "to start the agent, run on the host:\n  systemctl daemon-reload\n  systemctl enable --now outpost-agent\n"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output %q lacks %q", out.String(), s)
		}
	}
	exe, _ := os.Executable()
	want, _ := os.ReadFile(exe)
	if got, _ := os.ReadFile(filepath.Join(root, "usr/bin/outpost-agent")); !bytes.Equal(got, want) {
		t.Error("the running binary was not installed")
	}

	code = Execute("v1", []string{"install", "--root", root}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), `"user-data" not set`) {
		t.Errorf("without --user-data: exit %d, %s", code, errOut.String())
	}
}

// docs/agent.md shows the unit install writes; they must not drift apart.
func TestDocumentedUnit(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/agent.md")
	if err != nil {
		t.Fatal(err)
	}
	unit := systemdUnit(DefaultBinDir)
	if !strings.Contains(string(doc), unit) {
		t.Errorf("docs/agent.md does not show the unit install writes:\n%s", unit)
	}
}
