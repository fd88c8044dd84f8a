package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/spf13/cobra"
)

func newRegistriesCommand(o *options) *cobra.Command {
	cmd := group("registries", "Manage pack registries: where packs come from (hub-wide)", "registry")
	cmd.AddCommand(
		newRegistriesAddCommand(o),
		newRegistriesListCommand(o),
		newRegistriesGetCommand(o),
		newRegistriesSyncCommand(o),
		newRegistriesDeleteCommand(o),
	)
	return cmd
}

// registrySource is where a registry reads from, for people: a URL without
// its password (registries are readable by every token), or the directory.
func registrySource(r *v1.Registry) string {
	switch {
	case r.Spec.URL != "":
		if u, err := url.Parse(r.Spec.URL); err == nil {
			return u.Redacted()
		}
		return r.Spec.URL
	case r.Spec.Directory != "":
		return r.Spec.Directory
	case r.Spec.Type == v1.RegistryBuiltin:
		return "(built into the hub)"
	}
	return none
}

// registrySyncFailed reports whether the registry's last sync failed: a
// failed sync keeps the last good packs and sets LastError, a good one
// clears it.
func registrySyncFailed(r *v1.Registry) bool { return r.Status.LastError != "" }

func registryTable(regs []v1.Registry, now time.Time) *table {
	t := &table{header: []string{"NAME", "TYPE", "SOURCE", "PACKS", "VERSIONS", "LAST SYNC", "ERROR"}}
	for i := range regs {
		r := &regs[i]
		t.add(r.Metadata.Name, orNone(r.Spec.Type), registrySource(r),
			strconv.Itoa(r.Status.Packs), strconv.Itoa(r.Status.Versions),
			ago(r.Status.LastSync, now), orNone(r.Status.LastError))
	}
	return t
}

func newRegistriesAddCommand(o *options) *cobra.Command {
	var (
		typ, rawURL, dir, interval, caFile string
		labels                             []string
	)
	cmd := &cobra.Command{
		Use:   "add NAME --type pack-index|helm (--url URL | --dir DIR) [--interval 1h] [--registry-ca-file FILE]",
		Short: "Add a registry and sync it (hub admins only)",
		Long: `add creates a registry and syncs it at once. A pack-index registry reads an
index.yaml of packs from --url or from --dir, a directory on the hub's file
system; a helm registry reads a Helm chart repository at --url and offers
each chart as an addon pack. The registry then syncs every --interval (a Go
duration of at least 1m, default 1h; 0 turns the schedule off).

The registry's CA is --registry-ca-file: --ca-file stays the hub's CA, as
for every other command. A first sync that fails still adds the registry;
add then prints the error and exits non-zero.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if typ == "" {
				return errors.New("pass --type pack-index or --type helm")
			}
			if (rawURL == "") == (dir == "") {
				return errors.New("pass exactly one of --url and --dir")
			}
			set, err := parseLabelSet(labels)
			if err != nil {
				return err
			}
			r := &v1.Registry{
				Metadata: v1.ObjectMeta{Name: name, Labels: set},
				Spec:     v1.RegistrySpec{Type: typ, URL: rawURL, Directory: dir, SyncInterval: interval},
			}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("read the registry's CA file: %w", err)
				}
				r.Spec.CACert = string(pem)
			}
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			out, err := c.CreateRegistry(cmd.Context(), r)
			if err != nil {
				return wrap(err, "add registry %q", name)
			}
			if out == nil {
				return fmt.Errorf("add registry %q: the hub answered without the registry", name)
			}
			if p.format != outputTable {
				if err := p.print(out, nil); err != nil {
					return err
				}
			} else if registrySyncFailed(out) {
				fmt.Fprintf(p.out, "registry %q added\n", name)
			} else {
				fmt.Fprintf(p.out, "registry %q added: %s, %s\n", name, quantity(out.Status.Packs, "pack"), quantity(out.Status.Versions, "version"))
			}
			if registrySyncFailed(out) {
				return fmt.Errorf("registry %q was added, but its first sync failed (it retries every interval, or run \"outpost registries sync %s\"): %s", name, name, out.Status.LastError)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&typ, "type", "", "pack-index or helm")
	fl.StringVar(&rawURL, "url", "", "URL of the pack index or Helm repository")
	fl.StringVar(&dir, "dir", "", "directory of a pack index on the hub's file system")
	fl.StringVar(&interval, "interval", "", "how often to sync, e.g. 30m (default 1h; 0: never by itself)")
	fl.StringVar(&caFile, "registry-ca-file", "", "PEM file of the CA that signs the registry's certificate")
	fl.StringArrayVar(&labels, "label", nil, "label key=value (repeatable)")
	return cmd
}

func newRegistriesListCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the registries and how their last sync went",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			list, err := c.ListRegistries(cmd.Context())
			if err != nil {
				return wrap(err, "list registries")
			}
			return printList(cmd, p, list, "no registries", registryTable)
		},
	}
}

func newRegistriesGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one registry",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			r, err := c.GetRegistry(cmd.Context(), args[0])
			if err != nil {
				return wrap(err, "get registry %q", args[0])
			}
			return p.print(r, func(now time.Time) *table { return registryTable([]v1.Registry{*r}, now) })
		},
	}
}

func newRegistriesSyncCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "sync NAME",
		Short: "Sync a registry now and show the result (hub admins only)",
		Long: `sync fetches the registry's catalog now and prints the registry with its new
status. When the sync fails the registry keeps its last good packs; sync
prints the error and exits non-zero. Profiles that follow a train move to
the newest matching version the sync brought.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			r, err := c.SyncRegistry(cmd.Context(), args[0])
			if err != nil {
				return wrap(err, "sync registry %q", args[0])
			}
			if r == nil {
				return fmt.Errorf("sync registry %q: the hub answered without the registry", args[0])
			}
			if err := p.print(r, func(now time.Time) *table { return registryTable([]v1.Registry{*r}, now) }); err != nil {
				return err
			}
			if registrySyncFailed(r) {
				return fmt.Errorf("sync registry %q failed; it keeps its last good packs: %s", args[0], r.Status.LastError)
			}
			return nil
		},
	}
}

func newRegistriesDeleteCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a registry and its packs (hub admins only)",
		Long: `delete removes a registry and every pack it offered. Profiles that use those
packs fail validation from then on, naming the missing pack.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := o.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteRegistry(cmd.Context(), args[0]); err != nil {
				return wrap(err, "delete registry %q", args[0])
			}
			return o.done(cmd, nil, fmt.Sprintf("registry %q deleted", args[0]))
		},
	}
}
