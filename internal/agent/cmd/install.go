package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// Where install puts things on the host.
const (
	DefaultBinDir = "/usr/local/bin"
	UnitPath      = "/etc/systemd/system/outpost-agent.service"
	UnitName      = "outpost-agent"
)

// systemdUnit is the agent's service, as docs/agent.md shows it.
func systemdUnit(binDir string) string {
	return `[Unit]
Description=Outpost edge agent
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=` + path.Join(binDir, "outpost-agent") + ` run --user-data ` + DefaultUserDataPath + `
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`
}

// runner runs a host command; tests record the commands instead.
type runner interface {
	Run(ctx context.Context, name string, args ...string) error
}

type execRunner struct{ stdout, stderr io.Writer }

func (r execRunner) Run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// installOptions are what install does; the command fills them from flags.
type installOptions struct {
	userData string
	root     hostos.Root
	binDir   string
	// start runs systemctl; without it the commands are printed.
	start bool
	// executable is the binary to install: the running one.
	executable string
	run        runner
	out, warn  io.Writer
}

func installCmd() *cobra.Command {
	var userDataPath, rootDir, binDir string
	var noStart bool
	c := &cobra.Command{
		Use:   "install",
		Short: "Install this agent on the host as a systemd service",
		Long: `install checks the user-data, copies this binary to --bin-dir, the user-data to
` + DefaultUserDataPath + ` (0600) and the service unit to ` + UnitPath + `, then
runs systemctl daemon-reload and systemctl enable --now ` + UnitName + `.

User-data in the original product's cloud-config format is converted: the
file installed is in Outpost's format, and every key that was not carried
over is printed as a warning.

With --no-start, or a --root other than /, the systemctl commands are
printed instead of run.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find this binary: %w", err)
			}
			root := hostos.Root{Dir: rootDir}
			return install(c.Context(), installOptions{
				userData:   userDataPath,
				root:       root,
				binDir:     binDir,
				start:      !noStart && root.IsHost(),
				executable: exe,
				run:        execRunner{stdout: c.OutOrStdout(), stderr: c.ErrOrStderr()},
				out:        c.OutOrStdout(),
				warn:       c.ErrOrStderr(),
			})
		},
	}
	c.Flags().StringVar(&userDataPath, "user-data", "", "site settings file (Outpost YAML or the original product's #cloud-config)")
	c.Flags().StringVar(&rootDir, "root", "/", "directory standing for the host's / (image builds, tests)")
	c.Flags().StringVar(&binDir, "bin-dir", DefaultBinDir, "where the agent binary goes, on the host")
	c.Flags().BoolVar(&noStart, "no-start", false, "install only: print the systemctl commands instead of running them")
	_ = c.MarkFlagRequired("user-data")
	return c
}

func install(ctx context.Context, o installOptions) error {
	if !path.IsAbs(o.binDir) {
		return fmt.Errorf("--bin-dir %q must be an absolute path", o.binDir)
	}
	data, err := os.ReadFile(o.userData)
	if err != nil {
		return fmt.Errorf("read user-data: %w", err)
	}
	ud, warns, err := userdata.ParseAny(data)
	for _, w := range warns {
		fmt.Fprintf(o.warn, "warning: %s: %s\n", o.userData, w)
	}
	if err != nil {
		return fmt.Errorf("user-data %s: %w", o.userData, err)
	}
	if userdata.IsStylus(data) {
		// `run` reads our format: install the converted settings and say
		// where they came from.
		conv, err := yaml.Marshal(ud)
		if err != nil {
			return fmt.Errorf("user-data %s: %w", o.userData, err)
		}
		header := fmt.Sprintf("# Converted by outpost-agent install on %s from %s (the original\n# product's cloud-config); docs/images.md shows how its keys map to these.\n",
			time.Now().UTC().Format(time.DateOnly), filepath.Base(o.userData))
		data = append([]byte(header), conv...)
	}

	bin := path.Join(o.binDir, "outpost-agent")
	if err := installBinary(o.executable, o.root.Path(bin)); err != nil {
		return hintRoot(fmt.Errorf("install %s: %w", bin, err))
	}
	fmt.Fprintf(o.out, "installed %s\n", bin)

	if err := o.root.MkdirAll(path.Dir(DefaultUserDataPath), 0o700); err != nil {
		return hintRoot(err)
	}
	if err := o.root.WriteFileAtomic(DefaultUserDataPath, data, 0o600); err != nil {
		return hintRoot(fmt.Errorf("install user-data: %w", err))
	}
	fmt.Fprintf(o.out, "installed %s\n", DefaultUserDataPath)

	if err := o.root.WriteFileAtomic(UnitPath, []byte(systemdUnit(o.binDir)), 0o644); err != nil {
		return hintRoot(fmt.Errorf("install unit: %w", err))
	}
	fmt.Fprintf(o.out, "installed %s\n", UnitPath)

	cmds := [][]string{
		{"systemctl", "daemon-reload"},
		{"systemctl", "enable", "--now", UnitName},
	}
	if !o.start {
		fmt.Fprintln(o.out, "to start the agent, run on the host:")
		for _, c := range cmds {
			fmt.Fprintf(o.out, "  %s\n", strings.Join(c, " "))
		}
		return nil
	}
	for _, c := range cmds {
		if err := o.run.Run(ctx, c[0], c[1:]...); err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return fmt.Errorf("%w: this host has no systemd; start %s run --user-data %s with its init system", err, bin, DefaultUserDataPath)
			}
			return err
		}
	}
	fmt.Fprintf(o.out, "started %s.service\n", UnitName)
	return nil
}

// installBinary copies src to dst through a temporary file: the old binary
// may be running (a re-install), and replacing it in place fails with
// "text file busy" where a rename does not.
func installBinary(src, dst string) error {
	if si, err := os.Stat(src); err == nil {
		if di, err := os.Stat(dst); err == nil && os.SameFile(si, di) {
			return nil // re-running the installed binary
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".outpost-agent.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

func hintRoot(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (run as root)", err)
	}
	return err
}
