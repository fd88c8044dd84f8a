package cli

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/client"
	"github.com/spf13/cobra"
)

// options are the global flags and what every command shares.
type options struct {
	version string

	server   string
	token    string
	caFile   string
	insecure bool
	project  string
	output   string

	getenv func(string) string
	now    func() time.Time
}

// NewRootCommand returns the outpost command tree.
func NewRootCommand(version string) *cobra.Command {
	return newRoot(&options{version: version, getenv: os.Getenv, now: time.Now})
}

// newRoot builds the tree around o, which tests fill with their own
// environment and clock.
func newRoot(o *options) *cobra.Command {
	root := &cobra.Command{
		Use:   "outpost",
		Short: "Manage an Outpost edge fleet",
		Long: `outpost manages the edge hosts of an Outpost hub.

Start with "outpost login --server https://HUB:7080 --token TOKEN --ca-file ca.crt";
the settings are saved and used by every other command.`,
		Version:       o.version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := root.PersistentFlags()
	pf.StringVar(&o.server, "server", "", "hub URL, e.g. https://hub:7080 (env "+envServer+")")
	pf.StringVar(&o.token, "token", "", "API token (env "+envToken+")")
	pf.StringVar(&o.caFile, "ca-file", "", "PEM file of the hub CA (env "+envCAFile+")")
	pf.BoolVar(&o.insecure, "insecure-skip-verify", false, "do not verify the hub's certificate (tests only)")
	pf.StringVarP(&o.project, "project", "p", "", `project (env `+envProject+`; default from the config file, else "default")`)
	pf.StringVarP(&o.output, "output", "o", outputTable, "output format: table, json or yaml")

	root.AddCommand(
		newLoginCommand(o),
		newWhoAmICommand(o),
		newHostsCommand(o),
		newTokensCommand(o),
		newAPITokensCommand(o),
		newProjectsCommand(o),
		newEventsCommand(o),
		newVersionCommand(o),
		newServerCommand(),
		newBuildCommand(o),
		newApplyCommand(o),
		newProfilesCommand(o),
		newClustersCommand(o),
		newPacksCommand(o),
		newRegistriesCommand(o),
	)
	return root
}

// Execute runs the outpost command with os.Args and returns the exit code.
// SIGINT and SIGTERM cancel the command's context, so a watch ends cleanly.
func Execute(version string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRootCommand(version)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(root.ErrOrStderr(), "error: %s\n", describe(err))
		return 1
	}
	return 0
}

// describe adds a hint to errors whose fix is not obvious from the message.
func describe(err error) string {
	msg := err.Error()
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.Is(err, client.ErrUnauthenticated):
		msg += ` (check the token, or run "outpost login" again)`
	case errors.As(err, &unknownCA):
		msg += " (pass the hub CA with --ca-file)"
	case errors.As(err, &hostname):
		msg += " (the --server address must be one the hub's certificate names)"
	}
	return msg
}

// wrap names the operation in err unless the message already starts with
// it: the hub's own messages often do ("get host "x": ..."), and saying it
// twice reads like a stutter.
func wrap(err error, format string, args ...any) error {
	op := fmt.Sprintf(format, args...)
	if strings.HasPrefix(err.Error(), op+":") {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// noArgs makes a typo in a subcommand name an error rather than a help page
// and exit code 0, which scripts would take for success.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

// group is a command that only holds subcommands.
func group(use, short string, aliases ...string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Aliases: aliases,
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// exactArgs names the missing arguments in its error, unlike
// cobra.ExactArgs ("accepts 1 arg(s), received 0").
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return fmt.Errorf("usage: %s %s", cmd.CommandPath(), strings.Join(names, " "))
		}
		for i, a := range args {
			if strings.TrimSpace(a) == "" {
				return fmt.Errorf("%s: %s is empty", cmd.CommandPath(), names[i])
			}
		}
		return nil
	}
}

// settings resolves the connection settings for cmd.
func (o *options) settings(cmd *cobra.Command) (settings, string, error) {
	path, err := configPath(o.getenv)
	if err != nil {
		return settings{}, "", err
	}
	file, err := loadConfig(path)
	if err != nil {
		return settings{}, path, err
	}
	var ov overrides
	fl := cmd.Flags()
	if fl.Changed("server") {
		ov.Server = &o.server
	}
	if fl.Changed("token") {
		ov.Token = &o.token
	}
	if fl.Changed("ca-file") {
		ov.CAFile = &o.caFile
	}
	if fl.Changed("insecure-skip-verify") {
		ov.Insecure = &o.insecure
	}
	if fl.Changed("project") {
		ov.Project = &o.project
	}
	s, err := resolve(file, o.getenv, ov)
	return s, path, err
}

// client returns a client for cmd's settings and the project to work in.
func (o *options) client(cmd *cobra.Command) (*client.Client, string, error) {
	s, _, err := o.settings(cmd)
	if err != nil {
		return nil, "", err
	}
	if s.Server == "" {
		return nil, "", errors.New(`no hub server: run "outpost login --server URL --token TOKEN", or pass --server`)
	}
	if s.Token == "" {
		return nil, "", errors.New(`no api token: run "outpost login --server URL --token TOKEN", or pass --token`)
	}
	c, err := o.newClient(s)
	return c, s.Project, err
}

func (o *options) newClient(s settings) (*client.Client, error) {
	cfg := client.Config{
		Server:             s.Server,
		Token:              s.Token,
		CAFile:             s.CAFile,
		InsecureSkipVerify: s.Insecure,
		UserAgent:          "outpost-cli/" + o.version,
	}
	if s.CAFile == "" && s.CAPEM != "" {
		cfg.CAPEM = []byte(s.CAPEM)
	}
	return client.New(cfg)
}

// printer returns a printer for the -o format.
func (o *options) printer(cmd *cobra.Command) (*printer, error) {
	if err := checkOutput(o.output); err != nil {
		return nil, err
	}
	return &printer{out: cmd.OutOrStdout(), format: o.output, now: o.now()}, nil
}

// done reports a write: the object in json/yaml (for scripts), else msg.
// obj may be nil when the hub answered without a body.
func (o *options) done(cmd *cobra.Command, obj any, msg string) error {
	p, err := o.printer(cmd)
	if err != nil {
		return err
	}
	if p.format == outputTable {
		_, err := fmt.Fprintln(p.out, msg)
		return err
	}
	if obj == nil {
		return nil
	}
	return p.print(obj, nil)
}

// readSecret reads a secret given as "-" from stdin, so it need not appear
// in the process list or shell history.
func readSecret(in io.Reader, what string) (string, error) {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s from stdin: %w", what, err)
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("read %s from stdin: nothing there", what)
	}
	return line, nil
}

// session is what most commands start with: the client, the project and
// the printer of the command's flags and config.
func (o *options) session(cmd *cobra.Command) (*client.Client, string, *printer, error) {
	c, project, err := o.client(cmd)
	if err != nil {
		return nil, "", nil, err
	}
	p, err := o.printer(cmd)
	if err != nil {
		return nil, "", nil, err
	}
	return c, project, p, nil
}

// printList prints a list; an empty one in table mode is said on stderr,
// so that a script reading stdout sees nothing.
func printList[T any](cmd *cobra.Command, p *printer, list *v1.List[T], empty string, rows func([]T, time.Time) *table) error {
	if len(list.Items) == 0 && p.format == outputTable {
		_, err := fmt.Fprintln(cmd.ErrOrStderr(), empty)
		return err
	}
	return p.print(list, func(now time.Time) *table { return rows(list.Items, now) })
}
