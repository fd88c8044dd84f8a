package cli

import (
	"fmt"
	"strings"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/spf13/cobra"
)

func newTokensCommand(o *options) *cobra.Command {
	cmd := group("tokens", "Manage registration tokens, which let hosts enroll themselves", "token")
	cmd.AddCommand(
		newTokensCreateCommand(o),
		newTokensListCommand(o),
		newTokensGetCommand(o),
		newTokensRevokeCommand(o),
		newTokensDeleteCommand(o),
	)
	return cmd
}

func newTokensCreateCommand(o *options) *cobra.Command {
	var (
		expiresIn   string
		maxUses     int
		labels      []string
		description string
	)
	cmd := &cobra.Command{
		Use:   "create NAME [--expires 24h|RFC3339] [--max-uses N] [--label k=v ...]",
		Short: "Create a registration token and print its secret (shown only once)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			exp, err := parseExpiry(expiresIn, o.now())
			if err != nil {
				return err
			}
			if maxUses < 0 {
				return fmt.Errorf("--max-uses %d: must be 0 (no limit) or more", maxUses)
			}
			set, err := parseLabelSet(labels)
			if err != nil {
				return err
			}
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			t := &v1.RegistrationToken{
				Metadata: v1.ObjectMeta{Name: name, Project: project},
				Spec: v1.RegistrationTokenSpec{
					Description: description,
					ExpiresAt:   exp,
					MaxUses:     maxUses,
					Labels:      set,
				},
			}
			out, err := c.CreateRegistrationToken(cmd.Context(), project, t)
			if err != nil {
				return wrap(err, "create registration token %q", name)
			}
			if out == nil {
				return fmt.Errorf("create registration token %q: the hub answered without the token", name)
			}
			if p.format != outputTable {
				return p.print(out, nil)
			}
			var limits []string
			if out.Spec.ExpiresAt != nil {
				limits = append(limits, "expires "+out.Spec.ExpiresAt.UTC().Format(time.RFC3339))
			}
			if out.Spec.MaxUses > 0 {
				limits = append(limits, fmt.Sprintf("up to %d hosts", out.Spec.MaxUses))
			}
			summary := ""
			if len(limits) > 0 {
				summary = " (" + strings.Join(limits, ", ") + ")"
			}
			_, err = fmt.Fprintf(p.out, `registration token %q created in project %q%s.
its secret is shown only now:

  %s

put it in the host's user-data so its agent enrolls with it:

  registration:
    token: %s
`, name, project, summary, out.Token, out.Token)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&expiresIn, "expires", "", "expiry: a duration (24h, 7d) or an RFC 3339 time; default never")
	fl.IntVar(&maxUses, "max-uses", 0, "how many hosts may enroll with it; 0 means no limit")
	fl.StringArrayVar(&labels, "label", nil, "label key=value given to every host that enrolls with it (repeatable)")
	fl.StringVar(&description, "description", "", "what the token is for")
	return cmd
}

func newTokensListCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the project's registration tokens",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			list, err := c.ListRegistrationTokens(cmd.Context(), project)
			if err != nil {
				return wrap(err, "list registration tokens in project %q", project)
			}
			return printList(cmd, p, list, fmt.Sprintf("no registration tokens in project %q", project), registrationTokenTable)
		},
	}
}

func newTokensGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one registration token (without its secret)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			t, err := c.GetRegistrationToken(cmd.Context(), project, args[0])
			if err != nil {
				return wrap(err, "get registration token %q", args[0])
			}
			return p.print(t, func(now time.Time) *table { return registrationTokenTable([]v1.RegistrationToken{*t}, now) })
		},
	}
}

func newTokensRevokeCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Stop a registration token from enrolling more hosts",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			out, err := c.RevokeRegistrationToken(cmd.Context(), project, args[0])
			if err != nil {
				return wrap(err, "revoke registration token %q", args[0])
			}
			return o.done(cmd, out, fmt.Sprintf("registration token %q revoked; hosts that enrolled with it stay", args[0]))
		},
	}
}

func newTokensDeleteCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a registration token",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteRegistrationToken(cmd.Context(), project, args[0]); err != nil {
				return wrap(err, "delete registration token %q", args[0])
			}
			return o.done(cmd, nil, fmt.Sprintf("registration token %q deleted", args[0]))
		},
	}
}
