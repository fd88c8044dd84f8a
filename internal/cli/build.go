package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost-edge/outpost/forge/bootiso"
	"github.com/outpost-edge/outpost/forge/initramfs"
	"github.com/outpost-edge/outpost/forge/iso"
	"github.com/outpost-edge/outpost/forge/kernel"
	"github.com/outpost-edge/outpost/forge/remaster"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
	"github.com/outpost-edge/outpost/internal/errs"
)

// newBuildCommand is the staging toolbox: what Central IT runs once to make
// the images every site boots.
func newBuildCommand(o *options) *cobra.Command {
	cmd := group("build", "Build the images sites boot: check settings, seeds, boot ISOs, installers")
	cmd.Long = `Build the images every site boots, with the hub endpoint, the registration
token and the site defaults in them (see docs/staging.md):

  outpost build validate -f user-data.yaml          check the site settings
  outpost build cidata --user-data F -o seed.iso    a NoCloud seed for VM platforms
  outpost build iso --user-data F --kernel-dir D -o outpost.iso
                                                    Outpost's own small boot image
  outpost build installer --base BASE.iso --user-data F -o site.iso
                                                    a base installer with the settings added`
	cmd.AddCommand(
		newBuildValidateCommand(),
		newBuildCIDataCommand(),
		newBuildISOCommand(),
		newBuildInstallerCommand(),
		newBuildProviderImageCommand(),
		newBuildBundleCommand(),
	)
	return cmd
}

// outputFlag is the file a build writes. It is named --output/-o like the
// root's format flag, which a local flag of the same name hides in this
// command only: `-o seed.iso` reads as everyone expects.
func outputFlag(cmd *cobra.Command, p *string, what string) {
	cmd.Flags().StringVarP(p, "output", "o", "", what)
}

// readSettings reads and checks a settings file; "-" is stdin.
func readSettings(cmd *cobra.Command, path string) ([]byte, *userdata.UserData, error) {
	data, err := readInput(cmd, path)
	if err != nil {
		return nil, nil, err
	}
	ud, err := userdata.Parse(data)
	if err != nil {
		return nil, nil, &settingsError{path: displayName(path), err: err}
	}
	return data, ud, nil
}

func readInput(cmd *cobra.Command, path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("no user-data file given")
	}
	if path == "-" {
		data, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("read user-data from stdin: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read user-data: %w", err)
	}
	return data, nil
}

func displayName(path string) string {
	if path == "-" {
		return "<stdin>"
	}
	return path
}

// settingsError is invalid settings, printed one problem a line as
// FILE:LINE: field: message, the form editors and CI logs link to.
type settingsError struct {
	path string
	err  error
}

func (e *settingsError) Error() string {
	lines := settingsProblems(e.path, e.err)
	if len(lines) == 1 {
		return "invalid user-data " + lines[0]
	}
	return fmt.Sprintf("invalid user-data %s (%d problems):\n  %s", e.path, len(lines), strings.Join(lines, "\n  "))
}

func (e *settingsError) Unwrap() error { return e.err }

var (
	lineSuffix = regexp.MustCompile(` \(line (\d+)\)$`)
	yamlLine   = regexp.MustCompile(`line (\d+): `)
)

// settingsProblems renders each problem of a userdata.Parse error as
// FILE:LINE: field: message (FILE: field: message when no line is known).
func settingsProblems(path string, err error) []string {
	var list errs.FieldList
	if !errors.As(err, &list) {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
			return []string{fmt.Sprintf("%s:%s: %s", path, msg[m[2]:m[3]], trimParsePrefix(msg[:m[0]]+msg[m[1]:]))}
		}
		return []string{path + ": " + trimParsePrefix(msg)}
	}
	type problem struct {
		line int
		text string
	}
	ps := make([]problem, 0, len(list))
	for _, fe := range list {
		line, msg := 0, fe.Message
		if m := lineSuffix.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimSuffix(msg, m[0])
		}
		if line > 0 {
			ps = append(ps, problem{line, fmt.Sprintf("%s:%d: %s: %s", path, line, fe.Field, msg)})
		} else {
			ps = append(ps, problem{0, fmt.Sprintf("%s: %s: %s", path, fe.Field, msg)})
		}
	}
	// In file order, as a person fixes them; problems without a line
	// (missing keys) first.
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].line < ps[j].line })
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.text
	}
	return out
}

func newBuildValidateCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a site settings file (user-data) with the rules the agent applies at boot",
		Long: `Check a site settings file (user-data) with exactly the rules the agent
applies at boot. Each problem is printed as FILE:LINE: field: message and the
command exits with status 1; a valid file gets "ok" and a summary.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("-f FILE is required (- for stdin)")
			}
			_, ud, err := readSettings(cmd, file)
			var se *settingsError
			if errors.As(err, &se) {
				problems := settingsProblems(se.path, se.err)
				for _, p := range problems {
					fmt.Fprintln(cmd.OutOrStdout(), p)
				}
				return fmt.Errorf("%s: %d %s", se.path, len(problems), plural(len(problems), "problem", "problems"))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s\n", displayName(file))
			for _, l := range settingsSummary(ud) {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", l)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "settings file (- for stdin)")
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// settingsSummary says in a few lines what a host booted with ud will do.
func settingsSummary(ud *userdata.UserData) []string {
	trust := "system CAs"
	switch {
	case ud.Hub.CACert != "":
		trust = "CA from hub.caCert"
	case ud.Hub.CAFile != "":
		trust = "CA from " + ud.Hub.CAFile
	case ud.Hub.InsecureSkipVerify:
		trust = "any certificate (insecureSkipVerify)"
	}
	out := []string{fmt.Sprintf("hub:          %s (trusting %s)", ud.Hub.URL, trust)}
	if ud.Registration.Token != "" {
		out = append(out, "registration: token (enrolls at once into the token's project)")
	} else {
		out = append(out, fmt.Sprintf("registration: no token: waits for approval in project %q", ud.Registration.Project))
	}
	id := fmt.Sprintf("derived, prefix %q", ud.Host.Prefix())
	if ud.Host.ID != "" {
		id = ud.Host.ID
	}
	host := "host id:      " + id
	if ud.Host.Name != "" {
		host += fmt.Sprintf(", name %q", ud.Host.Name)
	}
	if n := len(ud.Host.Labels); n > 0 {
		host += fmt.Sprintf(", %d %s", n, plural(n, "label", "labels"))
	}
	out = append(out, host)
	if len(ud.Network.Interfaces) == 0 {
		out = append(out, "network:      DHCP on every interface")
	} else {
		names := make([]string, 0, len(ud.Network.Interfaces))
		for n, i := range ud.Network.Interfaces {
			names = append(names, n+" "+i.Type)
		}
		sort.Strings(names)
		out = append(out, "network:      "+strings.Join(names, ", "))
	}
	if !ud.Network.Proxy.IsZero() {
		out = append(out, "proxy:        yes")
	}
	var extras []string
	if n := len(ud.CACerts); n > 0 {
		extras = append(extras, fmt.Sprintf("%d CA %s", n, plural(n, "bundle", "bundles")))
	}
	if n := len(ud.NTPServers); n > 0 {
		extras = append(extras, fmt.Sprintf("%d NTP %s", n, plural(n, "server", "servers")))
	}
	if n := len(ud.Users); n > 0 {
		extras = append(extras, fmt.Sprintf("%d %s", n, plural(n, "user", "users")))
	}
	if ud.LocalUI.IsEnabled() {
		extras = append(extras, fmt.Sprintf("local UI on port %d", ud.LocalUI.Port))
	} else {
		extras = append(extras, "local UI off")
	}
	return append(out, "also:         "+strings.Join(extras, ", "))
}

// progress returns a function that prints a line per step to stderr.
func progress(cmd *cobra.Command) func(format string, args ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", args...)
	}
}

func newBuildCIDataCommand() *cobra.Command {
	var settingsFile, metaFile, cloudConfigFile, hostname, out string
	cmd := &cobra.Command{
		Use:   "cidata --user-data FILE -o SEED.iso",
		Short: "Write a NoCloud seed ISO (label cidata) with the site settings, for VM platforms",
		Long: `Write a NoCloud seed ISO (volume label "cidata"), in pure Go, as a VM's
second CD-ROM. It holds:

  outpost.yaml      the site settings, as given (checked first)
  outpost-network   their network part, for the Outpost boot image
  user-data         #cloud-config that writes the settings to
                    /etc/outpost/user-data.yaml on images that run cloud-init
                    (or the file given with --cloud-config)
  meta-data         instance-id and local-hostname (or --meta-data)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("-o SEED.iso is required")
			}
			step := progress(cmd)
			settings, ud, err := readSettings(cmd, settingsFile)
			if err != nil {
				return err
			}
			step("user-data %s is valid", displayName(settingsFile))
			if hostname != "" && !iso.ValidHostname(hostname) {
				return fmt.Errorf("--hostname %q is not a host name", hostname)
			}
			meta := iso.MetaData(hostname)
			if metaFile != "" {
				if hostname != "" {
					return errors.New("give --meta-data or --hostname, not both")
				}
				if meta, err = os.ReadFile(metaFile); err != nil {
					return fmt.Errorf("read meta-data: %w", err)
				}
			}
			userData := iso.SettingsCloudConfig(settings)
			if cloudConfigFile != "" {
				if userData, err = os.ReadFile(cloudConfigFile); err != nil {
					return fmt.Errorf("read cloud-config: %w", err)
				}
				if !strings.HasPrefix(string(userData), "#cloud-config") {
					return fmt.Errorf("cloud-config %s does not start with #cloud-config", cloudConfigFile)
				}
			}
			extra := map[string][]byte{iso.SettingsName: settings}
			network, err := initramfs.NetworkConfig(ud)
			if err != nil {
				return err
			}
			if network != nil {
				extra[initramfs.SeedNetwork] = network
			}
			step("writing %s", out)
			if err := iso.WriteCIData(out, userData, meta, extra); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&settingsFile, "user-data", "", "site settings file (- for stdin)")
	f.StringVar(&metaFile, "meta-data", "", "meta-data file to use as it is")
	f.StringVar(&cloudConfigFile, "cloud-config", "", "#cloud-config file to use as the seed's user-data")
	f.StringVar(&hostname, "hostname", "", "local-hostname (and instance-id) in the meta-data")
	outputFlag(cmd, &out, "seed ISO to write")
	return cmd
}

// defaultAgent is the outpost-agent next to this binary (bin/ after `make
// build`), else the one in PATH.
func defaultAgent() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "outpost-agent")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("outpost-agent"); err == nil {
		return p
	}
	return ""
}

func newBuildISOCommand() *cobra.Command {
	var (
		settingsFile, kernelDir, kernelDeb, kernelVersion, busybox, agent, isolinuxDir string
		appendArgs, out, initramfsOnly, kernelOut                                      string
		modules                                                                        []string
	)
	cmd := &cobra.Command{
		Use:   "iso --kernel-dir DIR [--user-data FILE] -o OUTPOST.iso",
		Short: "Build Outpost's own small bootable image (kernel, initramfs, agent)",
		Long: `Build Outpost's own small bootable image for labs and tests: a Debian kernel
and an initramfs with busybox, the kernel modules it needs, outpost-agent and
an /init that picks the site settings (a cidata seed, else the image's own),
brings up the network and runs the agent. The ISO boots from a PC BIOS
(ISOLINUX); it is written in pure Go.

scripts/fetch-kernel.sh downloads and extracts what it needs (the cloud
kernel, busybox-static, isolinux) and prints the paths to pass.

--initramfs-only writes just the initramfs, for direct kernel boot:
  qemu-system-x86_64 -kernel VMLINUZ -initrd INITRD.img -append console=ttyS0 ...`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			started := time.Now()
			step := progress(cmd)
			if (out == "") == (initramfsOnly == "") {
				return errors.New("give -o OUTPOST.iso or --initramfs-only INITRD.img")
			}
			if (kernelDir == "") == (kernelDeb == "") {
				return errors.New("give --kernel-dir DIR (an extracted linux-image package) or --kernel-deb FILE.deb")
			}
			var settings []byte
			if settingsFile != "" {
				var err error
				if settings, _, err = readSettings(cmd, settingsFile); err != nil {
					return err
				}
				step("user-data %s is valid", displayName(settingsFile))
			} else {
				step("no --user-data: the image will need a cidata seed at boot")
			}
			var k *kernel.Kernel
			var err error
			if kernelDeb != "" {
				cache, cerr := os.UserCacheDir()
				if cerr != nil {
					return fmt.Errorf("kernel cache: %w", cerr)
				}
				step("extracting %s (once; cached in %s)", kernelDeb, filepath.Join(cache, "outpost", "kernels"))
				k, err = kernel.OpenDeb(kernelDeb, filepath.Join(cache, "outpost", "kernels"))
			} else {
				k, err = kernel.Open(kernelDir, kernelVersion)
			}
			if err != nil {
				return err
			}
			step("kernel %s (%s)", k.Version, k.Image)
			if agent == "" {
				if agent = defaultAgent(); agent == "" {
					return errors.New("no outpost-agent next to this binary or in PATH: pass --agent")
				}
			}
			step("agent %s, busybox %s", agent, busybox)
			opts := bootiso.Options{
				Kernel: k, Busybox: busybox, Agent: agent, UserData: settings,
				Modules: modules, ExtraCmdline: appendArgs,
				Output: out, InitramfsOut: initramfsOnly, KernelOut: kernelOut,
				Progress: cmd.ErrOrStderr(),
			}
			if out != "" {
				var roots []string
				if isolinuxDir != "" {
					roots = append(roots, isolinuxDir)
				}
				if opts.ISOLinux, opts.LDLinux, err = bootiso.FindISOLinux(roots...); err != nil {
					return err
				}
			}
			if err := bootiso.Build(opts); err != nil {
				return err
			}
			step("done in %s", time.Since(started).Round(time.Millisecond))
			for _, p := range []string{out, initramfsOnly, kernelOut} {
				if p != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", p)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&settingsFile, "user-data", "", "site settings to bake in (- for stdin); without: a seed is needed at boot")
	f.StringVar(&kernelDir, "kernel-dir", "", "extracted linux-image package (boot/vmlinuz-*, lib/modules/*)")
	f.StringVar(&kernelDeb, "kernel-deb", "", "linux-image .deb to take the kernel from (extracted once into the user cache)")
	f.StringVar(&kernelVersion, "kernel-version", "", "which kernel, when the directory has several")
	f.StringVar(&busybox, "busybox", "/bin/busybox", "static busybox binary (Debian's busybox-static)")
	f.StringVar(&agent, "agent", "", "static outpost-agent binary (default: next to this binary, else in PATH)")
	f.StringVar(&isolinuxDir, "isolinux", "", "where isolinux.bin and ldlinux.c32 are (default: the installed isolinux and syslinux-common)")
	f.StringSliceVar(&modules, "module", nil, "kernel module to load (repeatable; replaces the default list: "+strings.Join(initramfs.DefaultModules, ",")+")")
	f.StringVar(&appendArgs, "append", "", "extra kernel arguments, e.g. outpost.log_level=debug")
	f.StringVar(&initramfsOnly, "initramfs-only", "", "write only the initramfs, to this file (direct kernel boot)")
	f.StringVar(&kernelOut, "out-kernel", "", "also copy the kernel to this file")
	outputFlag(cmd, &out, "ISO to write")
	return cmd
}

func newBuildInstallerCommand() *cobra.Command {
	var base, settingsFile, agent, content, out string
	cmd := &cobra.Command{
		Use:   "installer --base BASE.iso --user-data FILE -o OUT.iso",
		Short: "Add the site settings, agent and content to a base installer ISO, keeping its boot record",
		Long: `Remaster a base installer ISO: its files and boot record (El Torito, hybrid
MBR/GPT) stay as they are, and /outpost/user-data.yaml (plus /outpost/network),
/outpost/outpost-agent (--agent) and /outpost/content/ (--content) are added.
Needs xorriso. The Outpost boot image (outpost build iso) reads these files
at boot, before its own baked settings.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			started := time.Now()
			if base == "" || out == "" {
				return errors.New("--base BASE.iso and -o OUT.iso are required")
			}
			settings, _, err := readSettings(cmd, settingsFile)
			if err != nil {
				return err
			}
			progress(cmd)("user-data %s is valid", displayName(settingsFile))
			err = remaster.Remaster(cmd.Context(), remaster.Options{
				Base: base, Output: out, UserData: settings, Agent: agent, Content: content,
				Progress: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			progress(cmd)("done in %s", time.Since(started).Round(time.Millisecond))
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "base", "", "base installer ISO")
	f.StringVar(&settingsFile, "user-data", "", "site settings file (- for stdin)")
	f.StringVar(&agent, "agent", "", "static outpost-agent to add as /outpost/outpost-agent")
	f.StringVar(&content, "content", "", "directory to add as /outpost/content")
	outputFlag(cmd, &out, "installer ISO to write")
	return cmd
}

// trimParsePrefix drops the "user-data: invalid: " userdata.Parse puts
// before a syntax error: the line already names the file.
func trimParsePrefix(msg string) string {
	msg = strings.TrimPrefix(msg, "user-data: ")
	return strings.TrimPrefix(msg, errs.ErrInvalid.Error()+": ")
}
