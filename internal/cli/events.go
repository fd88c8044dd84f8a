package cli

import (
	"context"
	"fmt"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/client"
	"github.com/spf13/cobra"
)

func eventKey(e *v1.Event) string { return e.Metadata.Name }

func newEventsCommand(o *options) *cobra.Command {
	var (
		object    string
		following bool
	)
	cmd := &cobra.Command{
		Use:   "events [--object Kind/name] [--follow]",
		Short: "List the project's events, newest last",
		Long: `events lists the project's events, newest last. --object limits them to one
object ("EdgeHost/edge-1", or "host/edge-1"). With --follow it then prints
new events as they happen until interrupted: table rows, or with -o json one
JSON document per line (first the list, then each watch event).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ref, err := parseObjectRef(object)
			if err != nil {
				return err
			}
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			f := client.EventFilter{Object: ref}
			ctx := cmd.Context()
			list, err := c.ListEvents(ctx, project, f)
			if err != nil {
				return wrap(err, "list events in project %q", project)
			}
			if !following {
				return printList(cmd, p, list, fmt.Sprintf("no events in project %q", project), eventTable)
			}

			var emit func(v1.WatchEvent[v1.Event]) error
			if p.format == outputTable {
				t := eventTable(list.Items, p.now)
				if err := t.write(p.out); err != nil {
					return err
				}
				rw := &rowWriter{w: p.out, widths: t.widths()}
				emit = func(ev v1.WatchEvent[v1.Event]) error {
					if ev.Type != v1.WatchAdded {
						return nil // events only matter when they happen
					}
					return rw.write(eventRow(&ev.Object, o.now())...)
				}
			} else {
				if err := p.printStream(list); err != nil {
					return err
				}
				emit = func(ev v1.WatchEvent[v1.Event]) error { return p.printStream(ev) }
			}
			err = follow(ctx, list.Revision, func(ctx context.Context, since int64) (<-chan v1.WatchEvent[v1.Event], <-chan error) {
				return c.WatchEvents(ctx, project, f, since)
			}, eventKey, emit)
			if err != nil {
				return wrap(err, "follow events in project %q", project)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&object, "object", "", "only events about this object, as Kind/name")
	cmd.Flags().BoolVarP(&following, "follow", "f", false, "after the list, print new events until interrupted")
	return cmd
}
