package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/client"
	"github.com/outpost-edge/outpost/internal/catalog"
	"github.com/spf13/cobra"
)

func newPacksCommand(o *options) *cobra.Command {
	cmd := group("packs", "Browse the packs the registries offer", "pack")
	cmd.AddCommand(
		newPacksListCommand(o),
		newPacksGetCommand(o),
		newPacksVersionsCommand(o),
	)
	return cmd
}

// parsePackRef splits "[REGISTRY/]NAME"; registry "" lets the hub's rule
// pick (the one registry that has it, the built-in one on a tie).
func parsePackRef(s string) (registry, name string, err error) {
	registry, name, ok := strings.Cut(s, "/")
	if !ok {
		registry, name = "", s
	}
	if name == "" || (ok && registry == "") || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("pack %q: want NAME or REGISTRY/NAME, e.g. k3s or builtin/k3s", s)
	}
	return registry, name, nil
}

// latestVersion is the version a "latest" train would pick: the newest
// that is not deprecated (the newest of all when every one is).
func latestVersion(spec *v1.PackSpec) string {
	best, bestDeprecated := "", true
	for _, v := range spec.Versions {
		switch {
		case best == "",
			bestDeprecated && !v.Deprecated,
			bestDeprecated == v.Deprecated && catalog.Newer(v.Version, best):
			best, bestDeprecated = v.Version, v.Deprecated
		}
	}
	return best
}

func packTable(packs []v1.Pack, _ time.Time) *table {
	t := &table{header: []string{"REGISTRY", "NAME", "LAYER", "TYPE", "VERSIONS", "LATEST"}}
	for i := range packs {
		s := &packs[i].Spec
		t.add(s.Registry, s.Name, orNone(s.Layer), orNone(s.Type), strconv.Itoa(len(s.Versions)), orNone(latestVersion(s)))
	}
	return t
}

// packVersionKubernetes is the Kubernetes a version is (a k8s pack) or
// supports (a range from its constraints).
func packVersionKubernetes(v *v1.PackVersion) string {
	if v.KubernetesVersion != "" {
		return v.KubernetesVersion
	}
	if v.Constraints != nil && v.Constraints.Kubernetes != "" {
		return v.Constraints.Kubernetes
	}
	return none
}

// packVersionSource says what a version installs: its chart, its
// artifacts, or its manifests.
func packVersionSource(v *v1.PackVersion) string {
	var parts []string
	if c := v.Chart; c != nil {
		parts = append(parts, "chart "+c.Name+"@"+c.Version)
	}
	if v.Chart == nil && len(v.Artifacts) > 0 {
		names := make([]string, len(v.Artifacts))
		for i, a := range v.Artifacts {
			names[i] = a.Name
			if a.Arch != "" {
				names[i] += " (" + a.Arch + ")"
			}
		}
		parts = append(parts, strings.Join(names, ", "))
	}
	if n := len(v.Manifests); n > 0 {
		parts = append(parts, quantity(n, "manifest"))
	}
	if len(parts) == 0 {
		return none
	}
	return strings.Join(parts, "; ")
}

// quantity is "1 manifest", "3 manifests".
func quantity(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func packVersionsTable(pk *v1.Pack) *table {
	t := &table{header: []string{"VERSION", "KUBERNETES", "DEPRECATED", "PRESETS", "ARTIFACTS/CHART"}}
	for i := range pk.Spec.Versions {
		v := &pk.Spec.Versions[i]
		presets := make([]string, len(v.Presets))
		for j, p := range v.Presets {
			presets[j] = p.Name
		}
		deprecated := "no"
		if v.Deprecated {
			deprecated = "yes"
		}
		t.add(v.Version, packVersionKubernetes(v), deprecated, orNone(strings.Join(presets, ",")), packVersionSource(v))
	}
	return t
}

func newPacksListCommand(o *options) *cobra.Command {
	var f client.PackFilter
	cmd := &cobra.Command{
		Use:     "ls [--registry R] [--layer L] [--type T] [--name N]",
		Aliases: []string{"list"},
		Short:   "List packs, optionally of one registry, layer, type or name",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			f.Layer = normalize(f.Layer, v1.LayerOS, v1.LayerK8s, v1.LayerCNI, v1.LayerCSI, v1.LayerAddon)
			f.Type = normalize(f.Type, v1.PackDistro, v1.PackHelm, v1.PackManifest)
			list, err := c.ListPacks(cmd.Context(), f)
			if err != nil {
				return wrap(err, "list packs")
			}
			return printList(cmd, p, list, "no packs match", packTable)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Registry, "registry", "", "only packs of this registry")
	fl.StringVar(&f.Layer, "layer", "", "only packs of this layer: os, k8s, cni, csi, addon")
	fl.StringVar(&f.Type, "type", "", "only packs of this type: distro, helm, manifest")
	fl.StringVar(&f.Name, "name", "", "only packs whose name contains this")
	return cmd
}

func newPacksGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "get [REGISTRY/]NAME",
		Short: "Show one pack (-o yaml for its versions, values and presets)",
		Args:  exactArgs("[REGISTRY/]NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			registry, name, err := parsePackRef(args[0])
			if err != nil {
				return err
			}
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			pk, err := c.GetPack(cmd.Context(), registry, name)
			if err != nil {
				return wrap(err, "get pack %q", args[0])
			}
			return p.print(pk, func(now time.Time) *table { return packTable([]v1.Pack{*pk}, now) })
		},
	}
}

func newPacksVersionsCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "versions [REGISTRY/]NAME",
		Short: "List the versions of a pack, newest first",
		Args:  exactArgs("[REGISTRY/]NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			registry, name, err := parsePackRef(args[0])
			if err != nil {
				return err
			}
			c, _, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			pk, err := c.GetPack(cmd.Context(), registry, name)
			if err != nil {
				return wrap(err, "get pack %q", args[0])
			}
			if pk.Spec.Versions == nil {
				pk.Spec.Versions = []v1.PackVersion{}
			}
			return p.print(pk.Spec.Versions, func(time.Time) *table { return packVersionsTable(pk) })
		},
	}
}
