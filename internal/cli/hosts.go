package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/client"
	"github.com/spf13/cobra"
)

func newHostsCommand(o *options) *cobra.Command {
	cmd := group("hosts", "List, register, label, approve and delete edge hosts", "host")
	cmd.AddCommand(
		newHostsListCommand(o),
		newHostsGetCommand(o),
		newHostsRegisterCommand(o),
		newHostsLabelCommand(o),
		newHostsApproveCommand(o),
		newHostsDeleteCommand(o),
	)
	return cmd
}

func hostKey(h *v1.EdgeHost) string { return h.Metadata.Name }

func newHostsListCommand(o *options) *cobra.Command {
	var (
		filter client.HostFilter
		watch  bool
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the project's hosts",
		Long: `ls lists the project's hosts. With --watch it then prints every change: a
table row per change (the EVENT column says Added, Modified or Deleted), or
with -o json one JSON document per line (first the list, then each watch
event), or with -o yaml the same documents separated by "---". It stops on
Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			f := filter
			f.State = normalize(f.State, hostStates...)
			f.Health = normalize(f.Health, hostHealths...)
			if f.Selector, err = parseSelector(f.Selector); err != nil {
				return err
			}
			ctx := cmd.Context()
			list, err := c.ListHosts(ctx, project, f)
			if err != nil {
				return wrap(err, "list hosts in project %q", project)
			}
			if !watch {
				return printList(cmd, p, list, fmt.Sprintf("no hosts in project %q", project), hostTable)
			}

			var emit func(v1.WatchEvent[v1.EdgeHost]) error
			if p.format == outputTable {
				t := hostWatchTable(list.Items, p.now)
				if err := t.write(p.out); err != nil {
					return err
				}
				rw := &rowWriter{w: p.out, widths: t.widths()}
				emit = func(ev v1.WatchEvent[v1.EdgeHost]) error {
					return rw.write(append([]string{ev.Type}, hostRow(&ev.Object, o.now())...)...)
				}
			} else {
				if err := p.printStream(list); err != nil {
					return err
				}
				emit = func(ev v1.WatchEvent[v1.EdgeHost]) error { return p.printStream(ev) }
			}
			err = follow(ctx, list.Revision, func(ctx context.Context, since int64) (<-chan v1.WatchEvent[v1.EdgeHost], <-chan error) {
				return c.WatchHosts(ctx, project, f, since)
			}, hostKey, emit)
			if err != nil {
				return wrap(err, "watch hosts in project %q", project)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&filter.State, "state", "", "only hosts in this state: Unpaired, PendingApproval, Ready, InUse")
	fl.StringVar(&filter.Health, "health", "", "only hosts of this health: Unknown, Healthy, Unhealthy, Offline")
	fl.StringVarP(&filter.Selector, "selector", "l", "", "label selector, e.g. site=berlin,gpu")
	fl.BoolVarP(&watch, "watch", "w", false, "after the list, print changes until interrupted")
	return cmd
}

func newHostsGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one host",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			h, err := c.GetHost(cmd.Context(), project, args[0])
			if err != nil {
				return wrap(err, "get host %q", args[0])
			}
			return p.print(h, func(now time.Time) *table { return hostTable([]v1.EdgeHost{*h}, now) })
		},
	}
}

func newHostsRegisterCommand(o *options) *cobra.Command {
	var (
		labels  []string
		display string
	)
	cmd := &cobra.Command{
		Use:   "register ID [--label k=v ...] [--name DISPLAY]",
		Short: "Pre-register a host by ID so it pairs without a token",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := parseLabelSet(labels)
			if err != nil {
				return err
			}
			if display != "" {
				if set == nil {
					set = map[string]string{}
				}
				set[v1.LabelName] = display
			}
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			h := &v1.EdgeHost{Metadata: v1.ObjectMeta{Name: args[0], Project: project, Labels: set}}
			out, err := c.RegisterHost(cmd.Context(), project, h)
			if err != nil {
				return wrap(err, "register host %q", args[0])
			}
			return o.done(cmd, out, fmt.Sprintf("host %q registered in project %q", args[0], project))
		},
	}
	cmd.Flags().StringArrayVar(&labels, "label", nil, "label key=value (repeatable)")
	cmd.Flags().StringVar(&display, "name", "", "display name (the \"name\" label)")
	return cmd
}

func newHostsLabelCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "label ID key=value ... key- ...",
		Short: "Set (key=value) and remove (key-) labels of a host",
		Long: `label sets key=value labels and removes key- labels of a host. The "name"
label is the host's display name. It reads the host first and writes with
the revision it read; if someone changed the host in between it tries once
more.`,
		Example: "  outpost hosts label edge-1 site=berlin rack=4 old-",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("usage: %s ID key=value ... key- ...", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			ch, err := parseLabelArgs(args[1:])
			if err != nil {
				return err
			}
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			for attempt := 0; ; attempt++ {
				h, err := c.GetHost(ctx, project, id)
				if err != nil {
					return wrap(err, "get host %q", id)
				}
				out, err := c.PatchHostLabels(ctx, project, id, h.Metadata.Revision, ch.Set, ch.Remove)
				if errors.Is(err, client.ErrConflict) && attempt == 0 {
					continue
				}
				if err != nil {
					return wrap(err, "label host %q", id)
				}
				return o.done(cmd, out, fmt.Sprintf("host %q labeled", id))
			}
		},
	}
}

func newHostsApproveCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "approve ID",
		Short: "Approve a host that enrolled without a token",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			out, err := c.ApproveHost(cmd.Context(), project, args[0])
			if err != nil {
				return wrap(err, "approve host %q", args[0])
			}
			return o.done(cmd, out, fmt.Sprintf("host %q approved", args[0]))
		},
	}
}

func newHostsDeleteCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID",
		Aliases: []string{"rm"},
		Short:   "Delete a host; its certificate stops working at once",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteHost(cmd.Context(), project, args[0]); err != nil {
				return wrap(err, "delete host %q", args[0])
			}
			return o.done(cmd, nil, fmt.Sprintf("host %q deleted", args[0]))
		},
	}
}
