package cli

import (
	"fmt"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/spf13/cobra"
)

func newAPITokensCommand(o *options) *cobra.Command {
	cmd := group("apitokens", "Manage API tokens, which people and automation use", "apitoken")
	cmd.AddCommand(
		newAPITokensCreateCommand(o),
		newAPITokensListCommand(o),
		newAPITokensGetCommand(o),
		newAPITokensRevokeCommand(o),
	)
	return cmd
}

func newAPITokensCreateCommand(o *options) *cobra.Command {
	var (
		roles       []string
		expiresIn   string
		description string
	)
	cmd := &cobra.Command{
		Use:     "create NAME --role PROJECT=ROLE ... [--expires 24h|RFC3339]",
		Short:   "Create an API token and print its secret (shown only once)",
		Example: "  outpost apitokens create ci --role default=editor --expires 30d\n  outpost apitokens create ops --role '*=admin'",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			rs, err := parseRoles(roles)
			if err != nil {
				return err
			}
			exp, err := parseExpiry(expiresIn, o.now())
			if err != nil {
				return err
			}
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			t := &v1.APIToken{
				Metadata: v1.ObjectMeta{Name: name},
				Spec:     v1.APITokenSpec{Description: description, Roles: rs, ExpiresAt: exp},
			}
			out, err := c.CreateAPIToken(cmd.Context(), t)
			if err != nil {
				return wrap(err, "create api token %q", name)
			}
			if out == nil {
				return fmt.Errorf("create api token %q: the hub answered without the token", name)
			}
			if p.format != outputTable {
				return p.print(out, nil)
			}
			_, err = fmt.Fprintf(p.out, `api token %q created (roles: %s, expires: %s).
its secret is shown only now:

  %s

use it with: outpost login --server %s --token -   (the token on stdin)
         or: export OUTPOST_TOKEN=<the token>
`, name, rolesCell(out.Spec.Roles), expires(out.Spec.ExpiresAt, p.now), out.Token, c.Server())
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&roles, "role", nil, "role PROJECT=ROLE, ROLE one of viewer, site-operator, editor, admin; '*' is every project (repeatable)")
	fl.StringVar(&expiresIn, "expires", "", "expiry: a duration (24h, 7d) or an RFC 3339 time; default never")
	fl.StringVar(&description, "description", "", "what the token is for")
	return cmd
}

func newAPITokensListCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the API tokens you administer",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			list, err := c.ListAPITokens(cmd.Context())
			if err != nil {
				return wrap(err, "list api tokens")
			}
			return printList(cmd, p, list, "no api tokens", apiTokenTable)
		},
	}
}

func newAPITokensGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one API token (without its secret)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			t, err := c.GetAPIToken(cmd.Context(), args[0])
			if err != nil {
				return wrap(err, "get api token %q", args[0])
			}
			return p.print(t, func(now time.Time) *table { return apiTokenTable([]v1.APIToken{*t}, now) })
		},
	}
}

func newAPITokensRevokeCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke NAME",
		Aliases: []string{"delete", "rm"},
		Short:   "Revoke (delete) an API token; it stops working at once",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := o.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteAPIToken(cmd.Context(), args[0]); err != nil {
				return wrap(err, "revoke api token %q", args[0])
			}
			return o.done(cmd, nil, fmt.Sprintf("api token %q revoked", args[0]))
		},
	}
}
