package cli

import (
	"errors"
	"fmt"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/client"
	"github.com/spf13/cobra"
)

func newProjectsCommand(o *options) *cobra.Command {
	cmd := group("projects", "Manage projects, the tenancy boundary", "project")
	cmd.AddCommand(
		newProjectsListCommand(o),
		newProjectsGetCommand(o),
		newProjectsCreateCommand(o),
		newProjectsUpdateCommand(o),
		newProjectsDeleteCommand(o),
	)
	return cmd
}

func newProjectsListCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the projects you have a role in",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			list, err := c.ListProjects(cmd.Context())
			if err != nil {
				return wrap(err, "list projects")
			}
			return printList(cmd, p, list, "no projects", projectTable)
		},
	}
}

func newProjectsGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one project",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			pr, err := c.GetProject(cmd.Context(), args[0])
			if err != nil {
				return wrap(err, "get project %q", args[0])
			}
			return p.print(pr, func(now time.Time) *table { return projectTable([]v1.Project{*pr}, now) })
		},
	}
}

func newProjectsCreateCommand(o *options) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create NAME [--description TEXT]",
		Short: "Create a project (hub admins only)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := o.client(cmd)
			if err != nil {
				return err
			}
			pr := &v1.Project{Metadata: v1.ObjectMeta{Name: args[0]}, Spec: v1.ProjectSpec{Description: description}}
			out, err := c.CreateProject(cmd.Context(), pr)
			if err != nil {
				return wrap(err, "create project %q", args[0])
			}
			return o.done(cmd, out, fmt.Sprintf("project %q created", args[0]))
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the project is for")
	return cmd
}

func newProjectsUpdateCommand(o *options) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "update NAME --description TEXT",
		Short: "Change a project's description",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("description") {
				return errors.New("nothing to update: pass --description")
			}
			c, _, err := o.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// Read-modify-write with the revision read; retry once if
			// someone else wrote in between.
			for attempt := 0; ; attempt++ {
				pr, err := c.GetProject(ctx, args[0])
				if err != nil {
					return wrap(err, "get project %q", args[0])
				}
				pr.Spec.Description = description
				out, err := c.UpdateProject(ctx, pr)
				if errors.Is(err, client.ErrConflict) && attempt == 0 {
					continue
				}
				if err != nil {
					return wrap(err, "update project %q", args[0])
				}
				return o.done(cmd, out, fmt.Sprintf("project %q updated", args[0]))
			}
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the project is for")
	return cmd
}

func newProjectsDeleteCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a project that has no hosts and no tokens (hub admins only)",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := o.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteProject(cmd.Context(), args[0]); err != nil {
				return wrap(err, "delete project %q", args[0])
			}
			return o.done(cmd, nil, fmt.Sprintf("project %q deleted", args[0]))
		},
	}
}
