package oslayer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider/distro"
	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
)

// Host paths.
const (
	StatePath      = distro.StateDir + "/os.json"
	ModulesConf    = "/etc/modules-load.d/outpost.conf"
	SysctlConf     = "/etc/sysctl.d/90-outpost.conf"
	CertPrefix     = "outpost-os-"
	debianCertDir  = "/usr/local/share/ca-certificates"
	suseCertDir    = "/etc/pki/trust/anchors"
	hookScriptMode = 0o700
)

// Values are the OS packs' values.
type Values struct {
	OSRelease struct {
		ID        string `yaml:"id"`
		VersionID string `yaml:"versionID"`
	} `yaml:"osRelease"`
	PackageManager         string         `yaml:"packageManager"`
	Packages               []string       `yaml:"packages"`
	KernelModules          []string       `yaml:"kernelModules"`
	Sysctl                 map[string]any `yaml:"sysctl"`
	KernelArgs             []string       `yaml:"kernelArgs"`
	DisableSwap            bool           `yaml:"disableSwap"`
	Services               map[string]string
	Users                  []User   `yaml:"users"`
	CACerts                []CACert `yaml:"caCerts"`
	Files                  []File   `yaml:"files"`
	PreKubernetesCommands  []string `yaml:"preKubernetesCommands"`
	PostKubernetesCommands []string `yaml:"postKubernetesCommands"`
}

// User is a local user to create.
type User struct {
	Name              string   `yaml:"name"`
	Groups            []string `yaml:"groups"`
	Shell             string   `yaml:"shell"`
	SSHAuthorizedKeys []string `yaml:"sshAuthorizedKeys"`
	PasswordHash      string   `yaml:"passwordHash"`
}

// CACert is an extra CA certificate (PEM).
type CACert struct {
	Name    string `yaml:"name"`
	Content string `yaml:"content"`
}

// File is a file to write. The seed's spelling (targetPath, targetOwner,
// targetPermissions) is read too.
type File struct {
	Path              string `yaml:"path"`
	Owner             string `yaml:"owner"`
	Permissions       string `yaml:"permissions"`
	Content           string `yaml:"content"`
	TargetPath        string `yaml:"targetPath"`
	TargetOwner       string `yaml:"targetOwner"`
	TargetPermissions string `yaml:"targetPermissions"`
}

// state is os.json: what the last apply wrote.
type state struct {
	Pack    string   `json:"pack"`
	Version string   `json:"version"`
	Hash    string   `json:"hash"`
	Files   []string `json:"files,omitempty"`
	CACerts []string `json:"caCerts,omitempty"`
	Hooks   []string `json:"hooks,omitempty"`
	Conf    []string `json:"conf,omitempty"`
}

// Applier is the engine.LayerApplier of the os layer kind.
type Applier struct {
	env distro.Env
}

var _ engine.LayerApplier = (*Applier)(nil)

// New returns the OS layer applier working on env.
func New(env distro.Env) *Applier { return &Applier{env: env.WithDefaults()} }

func (o *Applier) load() (*state, error) {
	data, err := o.env.Root.ReadFile(StatePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("os layer state: %w", err)
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("os layer state %s: %w", StatePath, err)
	}
	return &s, nil
}

func (o *Applier) save(s *state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := o.env.Root.WriteFileAtomic(StatePath, append(data, '\n'), distro.ModeSecret); err != nil {
		return fmt.Errorf("save os layer state: %w", err)
	}
	return nil
}

// Check reads os.json: an apply is done at the layer's hash, a remove when
// nothing was applied.
func (o *Applier) Check(_ context.Context, a engine.LayerAction) (bool, error) {
	s, err := o.load()
	if err != nil {
		return false, err
	}
	if a.Op == engine.LayerRemove {
		return s == nil, nil
	}
	return s != nil && s.Hash == a.Layer.Hash, nil
}

// parse reads and checks the values, so that a bad one fails before the
// host is touched.
func parse(l v1.RenderedLayer) (*Values, error) {
	var v Values
	if err := yaml.Unmarshal([]byte(l.Values), &v); err != nil {
		return nil, engine.Permanent(fmt.Errorf("os layer %s values: %w", l.Name, err))
	}
	for i := range v.Files {
		f := &v.Files[i]
		f.Path = cmpOr(f.Path, f.TargetPath)
		f.Owner = cmpOr(f.Owner, f.TargetOwner)
		f.Permissions = cmpOr(f.Permissions, f.TargetPermissions)
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, engine.Permanent(fmt.Errorf("os layer %s: files[%d].path %q is not a clean absolute path", l.Name, i, f.Path))
		}
		if _, err := fileMode(f.Permissions); err != nil {
			return nil, engine.Permanent(fmt.Errorf("os layer %s: files[%d].permissions: %w", l.Name, i, err))
		}
		if f.Owner != "" && !reOwner.MatchString(f.Owner) {
			return nil, engine.Permanent(fmt.Errorf("os layer %s: files[%d].owner %q is not user[:group]", l.Name, i, f.Owner))
		}
	}
	for i, c := range v.CACerts {
		if !reName.MatchString(c.Name) {
			return nil, engine.Permanent(fmt.Errorf("os layer %s: caCerts[%d].name %q: use letters, digits, '.', '_' and '-'", l.Name, i, c.Name))
		}
		if !strings.Contains(c.Content, "-----BEGIN CERTIFICATE-----") {
			return nil, engine.Permanent(fmt.Errorf("os layer %s: caCerts[%d] (%s) holds no PEM certificate", l.Name, i, c.Name))
		}
	}
	for i, u := range v.Users {
		if !reUser.MatchString(u.Name) {
			return nil, engine.Permanent(fmt.Errorf("os layer %s: users[%d].name %q is not a user name", l.Name, i, u.Name))
		}
	}
	for name, want := range v.Services {
		if want != "enabled" && want != "disabled" {
			return nil, engine.Permanent(fmt.Errorf("os layer %s: services.%s is %q: use enabled or disabled", l.Name, name, want))
		}
	}
	return &v, nil
}

var (
	reName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	reUser  = regexp.MustCompile(`^[a-z_][a-z0-9_-]*[$]?$`)
	reOwner = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)
)

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func fileMode(s string) (fs.FileMode, error) {
	if s == "" {
		return 0o644, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("%q is not an octal mode such as 0644", s)
	}
	return fs.FileMode(n), nil
}

// packageManager is the values' packageManager, or the one the pack's
// name implies.
func packageManager(l v1.RenderedLayer, v *Values) string {
	if v.PackageManager != "" {
		return v.PackageManager
	}
	name := engine.PackName(l)
	switch {
	case strings.Contains(name, "ubuntu"), strings.Contains(name, "debian"):
		return "apt"
	case strings.Contains(name, "suse"), strings.Contains(name, "sles"):
		return "zypper"
	}
	return ""
}

// Apply puts the layer on the host, replacing what an earlier version of
// it wrote.
func (o *Applier) Apply(ctx context.Context, a engine.LayerAction) error {
	e := &o.env
	l := a.Layer
	v, err := parse(l)
	if err != nil {
		return err
	}
	if err := o.checkRelease(l, v); err != nil {
		return err
	}
	pm := packageManager(l, v)
	prev, err := o.load()
	if err != nil {
		return err
	}
	if prev == nil {
		prev = &state{}
	}
	st := &state{Pack: engine.PackName(l), Version: l.Version, Hash: l.Hash}

	certDir := debianCertDir
	if pm == "zypper" {
		certDir = suseCertDir
	}
	certsChanged := false
	for _, c := range v.CACerts {
		p := path.Join(certDir, CertPrefix+c.Name+".crt")
		ch, err := e.WriteFile(p, []byte(strings.TrimSpace(c.Content)+"\n"), distro.ModeFile)
		if err != nil {
			return fmt.Errorf("os layer: ca certificate %s: %w", c.Name, err)
		}
		certsChanged = certsChanged || ch
		st.CACerts = append(st.CACerts, p)
	}
	for _, p := range prev.CACerts {
		if !slices.Contains(st.CACerts, p) {
			if err := e.Remove(p); err != nil {
				return err
			}
			certsChanged = true
		}
	}
	if certsChanged {
		if err := o.run(ctx, "update-ca-certificates"); err != nil {
			return err
		}
	}

	for _, u := range v.Users {
		if err := o.user(ctx, u); err != nil {
			return err
		}
	}

	for _, f := range v.Files {
		mode, _ := fileMode(f.Permissions)
		if _, err := e.WriteFile(f.Path, []byte(f.Content), mode); err != nil {
			return fmt.Errorf("os layer: file %s: %w", f.Path, err)
		}
		if f.Owner != "" {
			if err := o.run(ctx, "chown", f.Owner, f.Path); err != nil {
				return err
			}
		}
		st.Files = append(st.Files, f.Path)
	}
	for _, p := range prev.Files {
		if !slices.Contains(st.Files, p) {
			if err := e.Remove(p); err != nil {
				return err
			}
		}
	}

	if len(v.Packages) > 0 {
		if err := o.packages(ctx, pm, v.Packages); err != nil {
			return err
		}
	}

	if len(v.KernelModules) > 0 {
		if _, err := e.WriteFile(ModulesConf, []byte(header(l)+strings.Join(v.KernelModules, "\n")+"\n"), distro.ModeFile); err != nil {
			return err
		}
		st.Conf = append(st.Conf, ModulesConf)
		for _, m := range v.KernelModules {
			if err := o.run(ctx, "modprobe", m); err != nil {
				return err
			}
		}
	}
	if len(v.Sysctl) > 0 {
		keys := make([]string, 0, len(v.Sysctl))
		for k := range v.Sysctl {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString(header(l))
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = %v\n", k, v.Sysctl[k])
		}
		if _, err := e.WriteFile(SysctlConf, []byte(b.String()), distro.ModeFile); err != nil {
			return err
		}
		st.Conf = append(st.Conf, SysctlConf)
		if err := o.run(ctx, "sysctl", "--load", SysctlConf); err != nil {
			return err
		}
	}
	for _, p := range prev.Conf {
		if !slices.Contains(st.Conf, p) {
			if err := e.Remove(p); err != nil {
				return err
			}
		}
	}

	if v.DisableSwap {
		if err := o.swapOff(ctx); err != nil {
			return err
		}
	}

	names := make([]string, 0, len(v.Services))
	for n := range v.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if v.Services[n] == "enabled" {
			if err := o.run(ctx, "systemctl", "enable", "--now", n); err != nil {
				return err
			}
			continue
		}
		// A unit that this image does not have is as disabled as it gets.
		if _, err := e.Run.Run(ctx, "systemctl", "disable", "--now", n); err != nil {
			e.Log.Warn("os layer: disable service", "service", n, "error", err)
		}
	}

	if len(v.KernelArgs) > 0 {
		e.Log.Warn("os layer: kernelArgs are not applied by this agent (they need a GRUB change and a reboot)", "layer", l.Name, "kernelArgs", v.KernelArgs)
	}

	for _, h := range []struct {
		path, what string
		cmds       []string
	}{
		{distro.PreHook, "preKubernetesCommands, run before the Kubernetes distro starts", v.PreKubernetesCommands},
		{distro.PostHook, "postKubernetesCommands, run after the Kubernetes distro has started", v.PostKubernetesCommands},
	} {
		if len(h.cmds) == 0 {
			if err := e.Remove(h.path); err != nil {
				return err
			}
			continue
		}
		script := "#!/bin/sh\n# Written by the Outpost agent from the OS layer " + l.Name + " " + l.Version + ":\n# " + h.what + ".\nset -e\n" + strings.Join(h.cmds, "\n") + "\n"
		if _, err := e.WriteFile(h.path, []byte(script), hookScriptMode); err != nil {
			return err
		}
		st.Hooks = append(st.Hooks, h.path)
	}
	return o.save(st)
}

func header(l v1.RenderedLayer) string {
	return "# Written by the Outpost agent from the OS layer " + l.Name + " " + l.Version + ".\n"
}

func (o *Applier) run(ctx context.Context, name string, args ...string) error {
	if _, err := o.env.Run.Run(ctx, name, args...); err != nil {
		return fmt.Errorf("os layer: %w", err)
	}
	return nil
}

// checkRelease refuses a layer made for another OS.
func (o *Applier) checkRelease(l v1.RenderedLayer, v *Values) error {
	if v.OSRelease.ID == "" {
		return nil
	}
	data, err := o.env.Root.ReadFile("/etc/os-release")
	if err != nil {
		return engine.Permanent(fmt.Errorf("os layer %s: read /etc/os-release: %w", l.Name, err))
	}
	id, ver := osRelease(data)
	if id != v.OSRelease.ID || (v.OSRelease.VersionID != "" && ver != v.OSRelease.VersionID) {
		return engine.Permanent(fmt.Errorf("os layer %s %s is for %s %s, but the host runs %s %s", l.Name, l.Version, v.OSRelease.ID, v.OSRelease.VersionID, id, ver))
	}
	return nil
}

func osRelease(data []byte) (id, versionID string) {
	for _, line := range strings.Split(string(data), "\n") {
		k, val, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		val = strings.Trim(val, `"'`)
		switch k {
		case "ID":
			id = val
		case "VERSION_ID":
			versionID = val
		}
	}
	return id, versionID
}

func (o *Applier) packages(ctx context.Context, pm string, pkgs []string) error {
	e := &o.env
	switch pm {
	case "apt":
		env := []string{"DEBIAN_FRONTEND=noninteractive"}
		if _, err := e.Run.RunCmd(ctx, hostexec.Cmd{Name: "apt-get", Args: []string{"update"}, Env: env}); err != nil {
			return fmt.Errorf("os layer: %w", err)
		}
		args := append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)
		if _, err := e.Run.RunCmd(ctx, hostexec.Cmd{Name: "apt-get", Args: args, Env: env}); err != nil {
			return fmt.Errorf("os layer: %w", err)
		}
	case "zypper":
		args := append([]string{"--non-interactive", "install", "--no-recommends"}, pkgs...)
		return o.run(ctx, "zypper", args...)
	default:
		return engine.Permanent(fmt.Errorf("os layer: no package manager known for it (set packageManager: apt or zypper)"))
	}
	return nil
}

// swapOff turns swap off now and comments the swap lines of /etc/fstab
// out, so it stays off after a reboot.
func (o *Applier) swapOff(ctx context.Context) error {
	e := &o.env
	if err := o.run(ctx, "swapoff", "-a"); err != nil {
		return err
	}
	data, err := e.Root.ReadFile("/etc/fstab")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("os layer: %w", err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	changed := false
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 3 && !strings.HasPrefix(f[0], "#") && f[2] == "swap" {
			lines[i] = "# disabled by the Outpost agent (kubelet needs swap off): " + l
			changed = true
		}
	}
	if !changed {
		return nil
	}
	fi, err := e.Root.Stat("/etc/fstab")
	if err != nil {
		return fmt.Errorf("os layer: %w", err)
	}
	_, err = e.WriteFile("/etc/fstab", []byte(strings.Join(lines, "")), fi.Mode().Perm())
	return err
}

// user creates a user, or adds the groups to one that exists, and sets its
// password hash and SSH keys.
func (o *Applier) user(ctx context.Context, u User) error {
	e := &o.env
	exists := false
	if data, err := e.Root.ReadFile("/etc/passwd"); err == nil {
		exists = bytes.Contains(append([]byte{'\n'}, data...), []byte("\n"+u.Name+":"))
	}
	groups := strings.Join(u.Groups, ",")
	switch {
	case !exists:
		args := []string{"--create-home", "--shell", cmpOr(u.Shell, "/bin/bash")}
		if groups != "" {
			args = append(args, "--groups", groups)
		}
		if err := o.run(ctx, "useradd", append(args, u.Name)...); err != nil {
			return err
		}
	case groups != "":
		if err := o.run(ctx, "usermod", "--append", "--groups", groups, u.Name); err != nil {
			return err
		}
	}
	if u.PasswordHash != "" {
		// On stdin, so the hash is not on a command line for ps to show.
		if _, err := e.Run.RunCmd(ctx, hostexec.Cmd{Name: "chpasswd", Args: []string{"--encrypted"}, Stdin: u.Name + ":" + u.PasswordHash + "\n"}); err != nil {
			return fmt.Errorf("os layer: user %s: %w", u.Name, err)
		}
	}
	if len(u.SSHAuthorizedKeys) > 0 {
		home := "/home/" + u.Name
		if u.Name == "root" {
			home = "/root"
		}
		keys := path.Join(home, ".ssh", "authorized_keys")
		if _, err := e.WriteFile(keys, []byte(strings.Join(u.SSHAuthorizedKeys, "\n")+"\n"), 0o600); err != nil {
			return err
		}
		if err := o.run(ctx, "chown", "-R", u.Name+":", path.Join(home, ".ssh")); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes what the layer wrote; packages, users, services and swap
// stay as they are (see the package documentation).
func (o *Applier) Remove(ctx context.Context, a engine.LayerAction) error {
	e := &o.env
	s, err := o.load()
	if err != nil || s == nil {
		return err
	}
	paths := slices.Concat(s.Files, s.CACerts, s.Hooks, s.Conf)
	if err := e.Remove(paths...); err != nil {
		return err
	}
	if len(s.CACerts) > 0 {
		if err := o.run(ctx, "update-ca-certificates"); err != nil {
			return err
		}
	}
	return e.Remove(StatePath)
}
