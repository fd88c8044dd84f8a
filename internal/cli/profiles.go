package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/spf13/cobra"
)

func newProfilesCommand(o *options) *cobra.Command {
	cmd := group("profiles", "Manage cluster profiles: versioned stacks of packs", "profile")
	cmd.AddCommand(
		newProfilesListCommand(o),
		newProfilesGetCommand(o),
		newProfilesVersionsCommand(o),
		newProfilesRenderCommand(o),
		newProfilesPublishCommand(o),
		newProfilesCloneCommand(o),
		newProfilesBumpCommand(o),
		newProfilesDeleteCommand(o),
	)
	return cmd
}

// parseProfileRef splits "NAME[@VERSION]". Without a version it is "" (the
// newest) unless needVersion: publishing or deleting "whatever is newest"
// is too easy to get wrong.
func parseProfileRef(s string, needVersion bool) (name, version string, err error) {
	name, version, hasAt := strings.Cut(s, "@")
	switch {
	case name == "" || (hasAt && version == ""):
		return "", "", fmt.Errorf("profile %q: want NAME@VERSION, e.g. edge-k3s@1.0.0", s)
	case needVersion && version == "":
		return "", "", fmt.Errorf("profile %q: name the version, e.g. %s@1.0.0", s, name)
	}
	return name, version, nil
}

// profileRef is how output names a profile version.
func profileRef(p *v1.ClusterProfile) string { return p.Metadata.Name + "@" + p.Spec.Version }

// profileLayersCell lists the layers as pack@version, with the version each
// layer resolves to now (a train's current stop) where the hub knows it.
func profileLayersCell(p *v1.ClusterProfile) string {
	resolved := map[string]string{}
	for _, r := range p.Status.Resolved {
		resolved[r.Layer] = r.Version
	}
	parts := make([]string, 0, len(p.Spec.Layers))
	for _, l := range p.Spec.Layers {
		name := l.Name
		if name == "" {
			name = l.Pack
		}
		if l.Pack == "" {
			parts = append(parts, name+"(manifests)")
			continue
		}
		v := resolved[name]
		if v == "" {
			v = l.Version
		}
		parts = append(parts, l.Pack+"@"+v)
	}
	if len(parts) == 0 {
		return none
	}
	return strings.Join(parts, ",")
}

func profileTable(profiles []v1.ClusterProfile, now time.Time) *table {
	t := &table{header: []string{"NAME", "VERSION", "TYPE", "PUBLISHED", "LAYERS", "AGE"}}
	for i := range profiles {
		p := &profiles[i]
		published := "no"
		if p.Spec.Published {
			published = "yes"
		}
		t.add(p.Metadata.Name, p.Spec.Version, orNone(p.Spec.Type), published, profileLayersCell(p), age(p.Metadata.CreatedAt, now))
	}
	return t
}

// exportedProfile is a profile without what the hub owns (revision,
// timestamps, project, status), so that it applies anywhere as written.
type exportedProfile struct {
	v1.TypeMeta `json:",inline"`
	Metadata    exportedMeta          `json:"metadata"`
	Spec        v1.ClusterProfileSpec `json:"spec"`
}

type exportedMeta struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

func exportProfile(p *v1.ClusterProfile) *exportedProfile {
	tm := p.TypeMeta
	if tm.APIVersion == "" {
		tm.APIVersion = v1.APIVersion
	}
	if tm.Kind == "" {
		tm.Kind = v1.KindClusterProfile
	}
	return &exportedProfile{TypeMeta: tm, Metadata: exportedMeta{Name: p.Metadata.Name, Labels: p.Metadata.Labels}, Spec: p.Spec}
}

func newProfilesListCommand(o *options) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:     "ls [--name NAME]",
		Aliases: []string{"list"},
		Short:   "List the project's profile versions",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			list, err := c.ListProfiles(cmd.Context(), project, name)
			if err != nil {
				return wrap(err, "list profiles in project %q", project)
			}
			return printList(cmd, p, list, fmt.Sprintf("no profiles in project %q", project), profileTable)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "only the versions of this profile")
	return cmd
}

func newProfilesGetCommand(o *options) *cobra.Command {
	var export bool
	cmd := &cobra.Command{
		Use:   "get NAME[@VERSION] [--export]",
		Short: "Show one profile version (default: the newest)",
		Long: `get shows one version of a profile, the newest when none is named. With
-o yaml or -o json it prints the whole object; --export leaves out what the
hub owns (revision, timestamps, project and status), so the output applies
as it is with "outpost apply -f".`,
		Args: exactArgs("NAME[@VERSION]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := parseProfileRef(args[0], false)
			if err != nil {
				return err
			}
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			cp, err := c.GetProfile(cmd.Context(), project, name, version)
			if err != nil {
				return wrap(err, "get profile %q", args[0])
			}
			var obj any = cp
			if export {
				obj = exportProfile(cp)
			}
			return p.print(obj, func(now time.Time) *table { return profileTable([]v1.ClusterProfile{*cp}, now) })
		},
	}
	cmd.Flags().BoolVar(&export, "export", false, "with -o yaml|json: leave out revision, timestamps, project and status")
	return cmd
}

func newProfilesVersionsCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "versions NAME",
		Short: "List the versions of a profile, oldest first",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.Contains(args[0], "@") {
				return fmt.Errorf("profile %q: give the name without a version", args[0])
			}
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			list, err := c.ListProfiles(cmd.Context(), project, args[0])
			if err != nil {
				return wrap(err, "list versions of profile %q", args[0])
			}
			return p.print(list, func(now time.Time) *table { return profileTable(list.Items, now) })
		},
	}
}

// parseVars parses repeated --set name=value flags.
func parseVars(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	vars := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: want variable=value", a)
		}
		if old, dup := vars[k]; dup && old != v {
			return nil, fmt.Errorf("--set: variable %q is set twice", k)
		}
		vars[k] = v
	}
	return vars, nil
}

func newProfilesRenderCommand(o *options) *cobra.Command {
	var set []string
	cmd := &cobra.Command{
		Use:   "render NAME[@VERSION] [--set variable=value ...]",
		Short: "Show exactly what a host would receive for a profile version",
		Long: `render resolves every layer's version (a train's current stop), merges each
layer's values (the pack's defaults, its presets, the profile's own values
with the variables filled in), renders the manifests, and prints the result
with its content hash. Variables without --set take their defaults.

The table output is a summary for people; -o yaml or -o json print the
rendered profile exactly as the hub sends it.`,
		Args: exactArgs("NAME[@VERSION]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := parseProfileRef(args[0], false)
			if err != nil {
				return err
			}
			vars, err := parseVars(set)
			if err != nil {
				return err
			}
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			rp, err := c.RenderProfile(cmd.Context(), project, name, version, vars)
			if err != nil {
				return wrap(err, "render profile %q", args[0])
			}
			if p.format != outputTable {
				return p.print(rp, nil)
			}
			return writeRendered(p.out, rp)
		},
	}
	cmd.Flags().StringArrayVar(&set, "set", nil, "value of a profile variable, variable=value (repeatable)")
	return cmd
}

// writeRendered prints a rendered profile for people: each layer in order
// with its resolved version, then its values, artifacts and manifests
// indented under it.
func writeRendered(w io.Writer, rp *v1.RenderedProfile) error {
	var b strings.Builder
	fmt.Fprintf(&b, "profile %s@%s (%s), %s\n", rp.Profile, rp.Version, orNone(rp.Type), quantity(len(rp.Layers), "layer"))
	fmt.Fprintf(&b, "hash %s\n", rp.Hash)
	for i, l := range rp.Layers {
		fmt.Fprintf(&b, "\n%d. %s  [%s, %s]\n", i+1, l.Name, orNone(l.Layer), orNone(l.Type))
		if l.Pack != "" {
			src := l.Pack
			if l.Registry != "" {
				src = l.Registry + "/" + l.Pack
			}
			line := "pack " + src + " " + l.Version
			if l.Train != "" {
				line += " (train " + l.Train + ")"
			}
			b.WriteString(indentLines(line, 3))
		}
		if l.KubernetesVersion != "" {
			b.WriteString(indentLines("kubernetes "+l.KubernetesVersion, 3))
		}
		if c := l.Chart; c != nil {
			line := "chart " + c.Name + " " + c.Version + " from " + c.Repository
			if c.Digest != "" {
				line += " (sha256 " + c.Digest + ")"
			}
			b.WriteString(indentLines(line, 3))
		}
		if len(l.Artifacts) > 0 {
			b.WriteString(indentLines("artifacts:", 3))
			for _, a := range l.Artifacts {
				line := a.Name
				if a.Arch != "" {
					line += " (" + a.Arch + ")"
				}
				line += " " + a.URL
				b.WriteString(indentLines(line, 5))
			}
		}
		if strings.TrimSpace(l.Values) != "" && strings.TrimSpace(l.Values) != "{}" {
			b.WriteString(indentLines("values:", 3))
			b.WriteString(indentLines(l.Values, 5))
		}
		if len(l.Manifests) > 0 {
			b.WriteString(indentLines("manifests:", 3))
			for _, m := range l.Manifests {
				b.WriteString(indentLines("--- # "+m.Name, 5))
				b.WriteString(indentLines(m.Content, 5))
			}
		}
		b.WriteString(indentLines("hash "+l.Hash, 3))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// indentLines indents every line of text by n spaces and ends it with a
// newline; empty lines stay empty.
func indentLines(text string, n int) string {
	pad := strings.Repeat(" ", n)
	var b strings.Builder
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString(pad)
			b.WriteString(line)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func newProfilesPublishCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "publish NAME@VERSION",
		Short: "Publish a profile version: it can no longer change",
		Args:  exactArgs("NAME@VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := parseProfileRef(args[0], true)
			if err != nil {
				return err
			}
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			out, err := c.PublishProfile(cmd.Context(), project, name, version)
			if err != nil {
				return wrap(err, "publish profile %q", args[0])
			}
			return o.done(cmd, out, fmt.Sprintf("profile %s@%s published", name, version))
		},
	}
}

func newProfilesCloneCommand(o *options) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "clone NAME[@VERSION] --to NEWNAME[@NEWVERSION]",
		Short: "Copy a profile version to a new name and/or version, unpublished",
		Args:  exactArgs("NAME[@VERSION]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := parseProfileRef(args[0], false)
			if err != nil {
				return err
			}
			if to == "" {
				return errors.New("pass --to NEWNAME[@NEWVERSION]")
			}
			newName, newVersion, err := parseProfileRef(to, false)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			out, err := c.CloneProfile(cmd.Context(), project, name, version, newName, newVersion)
			if err != nil {
				return wrap(err, "clone profile %q", args[0])
			}
			msg := fmt.Sprintf("profile %s cloned to %s (unpublished)", args[0], to)
			if out != nil {
				msg = fmt.Sprintf("profile %s cloned to %s (unpublished)", args[0], profileRef(out))
			}
			return o.done(cmd, out, msg)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "name of the copy, optionally with its version: NEWNAME[@NEWVERSION]")
	return cmd
}

var bumpParts = []string{"major", "minor", "patch"}

func newProfilesBumpCommand(o *options) *cobra.Command {
	var part string
	cmd := &cobra.Command{
		Use:   "bump NAME[@VERSION] --part major|minor|patch",
		Short: "Make the next version of a profile version, unpublished",
		Args:  exactArgs("NAME[@VERSION]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := parseProfileRef(args[0], false)
			if err != nil {
				return err
			}
			if part == "" {
				return errors.New("pass --part major, minor or patch")
			}
			part = normalize(part, bumpParts...)
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			out, err := c.BumpProfile(cmd.Context(), project, name, version, part)
			if err != nil {
				return wrap(err, "bump profile %q", args[0])
			}
			msg := fmt.Sprintf("profile %s bumped (%s)", args[0], part)
			if out != nil {
				msg = fmt.Sprintf("profile %s created from %s (unpublished)", profileRef(out), args[0])
			}
			return o.done(cmd, out, msg)
		},
	}
	cmd.Flags().StringVar(&part, "part", "", "which part of the version to raise: major, minor or patch")
	return cmd
}

func newProfilesDeleteCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME@VERSION",
		Aliases: []string{"rm"},
		Short:   "Delete one version of a profile",
		Args:    exactArgs("NAME@VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := parseProfileRef(args[0], true)
			if err != nil {
				return err
			}
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteProfile(cmd.Context(), project, name, version); err != nil {
				return wrap(err, "delete profile %q", args[0])
			}
			return o.done(cmd, nil, fmt.Sprintf("profile %s@%s deleted", name, version))
		},
	}
}
