package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func newLoginCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "login --server URL --token TOKEN [--ca-file FILE] [--insecure-skip-verify]",
		Short: "Check a token against the hub and save the connection settings",
		Long: `login checks the token with the hub, then saves the server, the token and
the hub CA (its PEM text, not the file's path) to the config file, mode 0600:
$OUTPOST_CONFIG, else $XDG_CONFIG_HOME/outpost/config.yaml, else
~/.config/outpost/config.yaml. "--token -" reads the token from stdin.
With --project, it also becomes the default project.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, path, err := o.settings(cmd)
			if err != nil {
				return err
			}
			file, err := loadConfig(path)
			if err != nil {
				return err
			}
			if s.Server == "" {
				return errors.New("login: --server is required")
			}
			if s.Token == "-" {
				if s.Token, err = readSecret(cmd.InOrStdin(), "token"); err != nil {
					return wrap(err, "login")
				}
			}
			sameServer := file.Server == s.Server
			tokenGiven := cmd.Flags().Changed("token") || o.getenv(envToken) != ""
			if s.Token == "" || (!sameServer && !tokenGiven) {
				// Never offer the saved token to a hub it was not made for.
				return errors.New("login: --token is required")
			}
			if s.CAFile != "" {
				b, err := os.ReadFile(s.CAFile)
				if err != nil {
					return wrap(err, "login: read CA file")
				}
				s.CAPEM, s.CAFile = string(b), ""
			} else if !sameServer {
				// The saved CA and trust choice belong to the old hub.
				s.CAPEM = ""
				if !cmd.Flags().Changed("insecure-skip-verify") && o.getenv(envInsecure) == "" {
					s.Insecure = false
				}
			}
			c, err := o.newClient(s)
			if err != nil {
				return wrap(err, "login")
			}
			me, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return wrap(err, "login to %s", c.Server())
			}
			cfg := Config{
				Server:             s.Server,
				Token:              s.Token,
				CAPEM:              s.CAPEM,
				InsecureSkipVerify: s.Insecure,
			}
			switch {
			case cmd.Flags().Changed("project"):
				cfg.Project = o.project
			case sameServer:
				cfg.Project = file.Project
			}
			if err := saveConfig(path, cfg); err != nil {
				return wrap(err, "login")
			}
			return o.done(cmd, me, fmt.Sprintf("logged in to %s as %q (roles: %s); saved to %s",
				c.Server(), me.Metadata.Name, rolesCell(me.Spec.Roles), path))
		},
	}
}

func newWhoAmICommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the API token in use and its roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			me, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return wrap(err, "whoami")
			}
			return p.print(me, func(now time.Time) *table {
				t := &table{header: []string{"SERVER", "TOKEN", "ID", "ROLES", "EXPIRES"}}
				t.add(c.Server(), me.Metadata.Name, orNone(me.Status.ID), rolesCell(me.Spec.Roles), expires(me.Spec.ExpiresAt, now))
				return t
			})
		},
	}
}

func newVersionCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of outpost",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			if o.output == outputTable {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), o.version)
				return err
			}
			p, _ := o.printer(cmd)
			return p.print(struct {
				Version string `json:"version"`
			}{o.version}, nil)
		},
	}
}
