package distro

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// SystemdDir is where the agent writes the units it owns.
const SystemdDir = "/etc/systemd/system"

// Hook scripts the os applier writes and the providers run around every
// start of the distro.
const (
	HooksDir = "/etc/outpost/hooks"
	PreHook  = HooksDir + "/pre-kubernetes.sh"
	PostHook = HooksDir + "/post-kubernetes.sh"
)

// Systemctl runs systemctl with args.
func (e *Env) Systemctl(ctx context.Context, args ...string) error {
	if _, err := e.Run.Run(ctx, "systemctl", args...); err != nil {
		return fmt.Errorf("systemctl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// StopUnit disables and stops a unit if its file is there. Failures are
// logged, not returned: a unit that will not stop is killed by the
// cleanup that follows.
func (e *Env) StopUnit(ctx context.Context, unitPaths ...string) {
	for _, p := range unitPaths {
		if !e.Exists(p) {
			continue
		}
		unit := path.Base(p)
		if _, err := e.Run.Run(ctx, "systemctl", "disable", "--now", unit); err != nil {
			e.Log.Warn("stop unit", "unit", unit, "error", err)
		}
	}
}

// RunHook runs one of the OS layer's hook scripts if it is there.
func (e *Env) RunHook(ctx context.Context, hook string) error {
	if !e.Exists(hook) {
		return nil
	}
	if _, err := e.Run.Run(ctx, "/bin/sh", "-e", hook); err != nil {
		return fmt.Errorf("os layer hook %s: %w", path.Base(hook), err)
	}
	return nil
}

// Start runs the pre hook, then systemctl with args (enable --now or
// restart, and the unit), then the post hook.
func (e *Env) Start(ctx context.Context, args ...string) error {
	if err := e.RunHook(ctx, PreHook); err != nil {
		return err
	}
	if err := e.Systemctl(ctx, args...); err != nil {
		return err
	}
	return e.RunHook(ctx, PostHook)
}

// EnvFile is a systemd EnvironmentFile for the proxy settings.
func (e *Env) EnvFile() []byte {
	var b strings.Builder
	b.WriteString("# Written by the Outpost agent: the site's proxy settings for the service.\n")
	for _, kv := range e.ProxyEnv {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "%s=%s\n", k, envQuote(v))
	}
	return []byte(b.String())
}

// envQuote quotes a value for an EnvironmentFile, which takes double
// quotes with backslash escapes (not the shell's '\” trick).
func envQuote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\"'\\$#;") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
