package cmd

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/outpost-edge/outpost/internal/agent/agent"
	"github.com/outpost-edge/outpost/internal/agent/hostid"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
	"github.com/outpost-edge/outpost/internal/errs"
)

// New returns the outpost-agent command tree for the given build version.
func New(version string) *cobra.Command {
	root := &cobra.Command{
		Use:           "outpost-agent",
		Short:         "Outpost edge agent: enrolls this host with the hub and keeps it at its spec",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(version), idCmd(), versionCmd(version))
	root.AddCommand(bundleCmd(), installCmd())
	return root
}

// Execute runs the command line and returns the exit code.
func Execute(version string, args []string, stdout, stderr io.Writer) int {
	c := New(version)
	c.SetArgs(args)
	c.SetOut(stdout)
	c.SetErr(stderr)
	if err := c.Execute(); err != nil {
		fmt.Fprintln(stderr, "outpost-agent:", describe(err))
		return 1
	}
	return 0
}

// describe prints validation errors one per line: user-data files have many
// fields and a person fixes them one by one.
func describe(err error) string {
	var list errs.FieldList
	if errors.As(err, &list) {
		var b strings.Builder
		b.WriteString("invalid user-data:")
		for _, e := range list {
			b.WriteString("\n  " + e.Error())
		}
		return b.String()
	}
	return err.Error()
}

func readUserData(path string) (*userdata.UserData, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read user-data: %w", err)
	}
	// Sites moving over from the original product keep their #cloud-config
	// stylus file; what it has that we do not use is said once, at start.
	ud, warnings, err := userdata.ParseAny(data)
	if err != nil {
		return nil, fmt.Errorf("user-data %s: %w", path, err)
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "user-data %s: warning: %s\n", path, w)
	}
	return ud, nil
}

func runCmd(version string) *cobra.Command {
	var userDataPath, rootDir, stateDir, logLevel string
	var simulate bool
	c := &cobra.Command{
		Use:   "run",
		Short: "Run the agent until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			ud, err := readUserData(userDataPath)
			if err != nil {
				return err
			}
			a, err := agent.New(agent.Config{
				Root:      hostos.Root{Dir: rootDir},
				UserData:  ud,
				StateDir:  stateDir,
				Version:   version,
				Logger:    log,
				Simulated: simulate,
			})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return a.Run(ctx)
		},
	}
	c.Flags().StringVar(&userDataPath, "user-data", "", "site settings file (YAML)")
	c.Flags().StringVar(&rootDir, "root", "", "directory standing for the host's / (tests, simulator); default the real host")
	c.Flags().StringVar(&stateDir, "state-dir", "", "where identity and spec cache live (default <root>"+agent.DefaultStateDir+")")
	c.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	c.Flags().BoolVar(&simulate, "simulate", false, "simulation: use the simulated distro and layer providers (nothing is installed; state under <root>/var/lib/outpost-sim)")
	_ = c.MarkFlagRequired("user-data")
	return c
}

func idCmd() *cobra.Command {
	var userDataPath, rootDir string
	c := &cobra.Command{
		Use:   "id",
		Short: "Print the host ID this host enrolls under",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var ud *userdata.UserData
			if userDataPath != "" {
				var err error
				if ud, err = readUserData(userDataPath); err != nil {
					return err
				}
			}
			id, err := hostid.Compute(hostos.Root{Dir: rootDir}, ud)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), id)
			return nil
		},
	}
	c.Flags().StringVar(&userDataPath, "user-data", "", "site settings file (YAML); without it the default prefix is used")
	c.Flags().StringVar(&rootDir, "root", "", "directory standing for the host's /")
	return c
}

func versionCmd(version string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agent version",
		Args:  cobra.NoArgs,
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprintln(c.OutOrStdout(), version)
		},
	}
}
