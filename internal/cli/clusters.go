package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/client"
)

func newClustersCommand(o *options) *cobra.Command {
	cmd := group("clusters", "Create, change and tear down Kubernetes clusters on edge hosts", "cluster")
	cmd.AddCommand(
		newClustersCreateCommand(o),
		newClustersListCommand(o),
		newClustersGetCommand(o),
		newClustersEventsCommand(o),
		newClustersScaleCommand(o),
		newClustersUpgradeCommand(o),
		newClustersSetCommand(o),
		newClustersDiffCommand(o),
		newClustersDeleteCommand(o),
		newClustersAbortCommand(o),
	)
	return cmd
}

func clusterKey(c *v1.Cluster) string { return c.Metadata.Name }

// --- cells and tables ---

func clusterProfilesCell(c *v1.Cluster) string {
	parts := make([]string, len(c.Spec.Profiles))
	for i, p := range c.Spec.Profiles {
		parts[i] = p.Name + "@" + p.Version
	}
	if len(parts) == 0 {
		return none
	}
	return strings.Join(parts, ",")
}

// clusterHosts lists the hosts the spec names, pool by pool.
func clusterHosts(spec *v1.ClusterSpec) []string {
	var out []string
	for _, p := range spec.Pools {
		out = append(out, p.Hosts...)
	}
	return out
}

// clusterNodesCell counts the hosts the spec wants that are Ready, out of
// all it wants: hosts that are leaving do not count towards either.
func clusterNodesCell(c *v1.Cluster) string {
	wanted := clusterHosts(&c.Spec)
	ready := 0
	for _, n := range c.Status.Nodes {
		if n.State == v1.NodeReady && slices.Contains(wanted, n.Host) {
			ready++
		}
	}
	return fmt.Sprintf("%d/%d", ready, len(wanted))
}

var clusterHeader = []string{"NAME", "STATE", "HEALTH", "NODES", "PROFILES", "ENDPOINT", "AGE"}

func clusterRow(c *v1.Cluster, now time.Time) []string {
	return []string{
		c.Metadata.Name,
		orNone(c.Status.State),
		orNone(c.Status.Health),
		clusterNodesCell(c),
		clusterProfilesCell(c),
		orNone(c.Status.Endpoint),
		age(c.Metadata.CreatedAt, now),
	}
}

func clusterTable(clusters []v1.Cluster, now time.Time) *table {
	t := &table{header: clusterHeader}
	for i := range clusters {
		t.add(clusterRow(&clusters[i], now)...)
	}
	return t
}

// clusterWatchTable is the cluster table with the EVENT column the watch
// rows fill in; the listed clusters count as Added.
func clusterWatchTable(clusters []v1.Cluster, now time.Time) *table {
	t := &table{
		header: append([]string{"EVENT"}, clusterHeader...),
		// Reserve the widths of what later rows typically hold
		// ("Provisioning", "Unhealthy"), so they line up with the header.
		minWidths: []int{len(v1.WatchModified), 12, len(v1.ClusterProvisioning), len(v1.HealthUnhealthy), 5, 20, 15, 3},
	}
	for i := range clusters {
		t.add(append([]string{v1.WatchAdded}, clusterRow(&clusters[i], now)...)...)
	}
	return t
}

// stepCell is the step a node runs (or failed at) with its progress.
func stepCell(n *v1.NodeStatus) string {
	if n.Steps == 0 {
		return none
	}
	progress := fmt.Sprintf("%d/%d", n.StepsDone, n.Steps)
	if n.Step == "" {
		return progress
	}
	return n.Step + " (" + progress + ")"
}

// nodeTable has a row per member of the cluster, then one per host the
// spec names that the hub has not claimed yet, so a Pending cluster shows
// its hosts too.
func nodeTable(c *v1.Cluster) *table {
	t := &table{header: []string{"HOST", "POOL", "ROLE", "STATE", "KUBERNETES", "STEP", "MESSAGE"}}
	seen := map[string]bool{}
	for i := range c.Status.Nodes {
		n := &c.Status.Nodes[i]
		seen[n.Host] = true
		t.add(n.Host, orNone(n.Pool), orNone(n.Role), orNone(n.State), orNone(n.KubernetesVersion), stepCell(n), orNone(n.Message))
	}
	for _, p := range c.Spec.Pools {
		for _, h := range p.Hosts {
			if !seen[h] {
				t.add(h, p.Name, none, none, none, none, "not claimed by the cluster yet")
			}
		}
	}
	return t
}

// layerTable shows each layer's version and its health in the cluster, as
// the node managing cluster-wide objects last reported it.
func layerTable(c *v1.Cluster) *table {
	health := map[string]v1.LayerHealth{}
	for _, n := range c.Status.Nodes {
		for _, h := range n.Layers {
			health[h.Name] = h
		}
	}
	t := &table{header: []string{"LAYER", "PACK", "VERSION", "HEALTH"}}
	for _, l := range c.Status.Layers {
		h := none
		if lh, ok := health[l.Layer]; ok {
			h = lh.State
			if lh.Message != "" {
				h += ": " + lh.Message
			}
		}
		t.add(l.Profile+"/"+l.Layer, orNone(l.Pack), orNone(l.Version), h)
	}
	return t
}

// writeClusterDetails prints one cluster for people: a summary, its nodes,
// the layers it runs towards, the updates its trains offer and its
// conditions.
func writeClusterDetails(w io.Writer, c *v1.Cluster, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, cellReplacer.Replace(v)) }
	line("Name", c.Metadata.Name)
	line("Project", orNone(c.Metadata.Project))
	line("State", orNone(c.Status.State))
	if c.Status.Reason != "" {
		line("Reason", c.Status.Reason)
	}
	line("Health", orNone(c.Status.Health))
	line("Nodes", clusterNodesCell(c)+" ready")
	line("Profiles", clusterProfilesCell(c))
	line("Endpoint", orNone(c.Status.Endpoint))
	if c.Status.Turn != "" {
		line("Upgrading", c.Status.Turn)
	}
	if c.Status.DeletingSince != nil {
		line("Deleting since", ago(c.Status.DeletingSince, now))
	}
	line("Labels", labelsCell(c.Metadata.Labels))
	line("Age", age(c.Metadata.CreatedAt, now))
	if err := tw.Flush(); err != nil {
		return err
	}
	sections := []*table{nodeTable(c)}
	if len(c.Status.Layers) > 0 {
		sections = append(sections, layerTable(c))
	}
	if len(c.Status.UpdatesAvailable) > 0 {
		t := &table{header: []string{"UPDATE AVAILABLE", "VERSION"}}
		for _, u := range c.Status.UpdatesAvailable {
			t.add(u.Layer, u.Version)
		}
		sections = append(sections, t)
	}
	if len(c.Status.Conditions) > 0 {
		t := &table{header: []string{"CONDITION", "STATUS", "REASON", "MESSAGE", "AGE"}}
		for _, cd := range c.Status.Conditions {
			t.add(cd.Type, cd.Status, orNone(cd.Reason), orNone(cd.Message), age(cd.LastTransitionTime, now))
		}
		sections = append(sections, t)
	}
	for _, t := range sections {
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
		if err := t.write(w); err != nil {
			return err
		}
	}
	if len(c.Status.UpdatesAvailable) > 0 {
		_, err := fmt.Fprintf(w, "\ntake them with: outpost clusters upgrade %s --latest\n", c.Metadata.Name)
		return err
	}
	return nil
}

// writeDiff prints what each host would do, "no changes" for hosts that
// would do nothing.
func writeDiff(w io.Writer, d *v1.ClusterDiff) error {
	var b strings.Builder
	for _, h := range d.Hosts {
		role := h.Role
		if role == "" {
			role = "leaving"
		}
		if len(h.Actions) == 0 {
			fmt.Fprintf(&b, "%s (%s): no changes\n", h.Host, role)
			continue
		}
		fmt.Fprintf(&b, "%s (%s):\n", h.Host, role)
		for _, a := range h.Actions {
			b.WriteString("  - " + cellReplacer.Replace(a) + "\n")
		}
	}
	if len(d.Hosts) == 0 {
		b.WriteString("no hosts\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// --- changes to a spec: what scale, upgrade and set do, and diff previews ---

// clusterChange is a change to a cluster's spec as the flags of the
// mutating commands describe it.
type clusterChange struct {
	// scale
	pool               string
	add, remove, hosts []string
	// upgrade
	profiles []string // NAME@VERSION
	latest   bool
	// set
	layer      string // [PROFILE/]LAYER
	valuesFile string
	variables  []string // k=v
}

func (ch *clusterChange) scaleFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&ch.pool, "pool", "", "the pool to change")
	f.StringSliceVar(&ch.add, "add", nil, "hosts to add to the pool (repeatable, or comma-separated)")
	f.StringSliceVar(&ch.remove, "remove", nil, "hosts to remove from the pool (repeatable, or comma-separated)")
	f.StringSliceVar(&ch.hosts, "hosts", nil, "the pool's hosts from now on, in order (comma-separated)")
}

func (ch *clusterChange) upgradeFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&ch.profiles, "profile", nil, "the profile version to run, NAME@VERSION (repeatable)")
	f.BoolVar(&ch.latest, "latest", false, "take the newest versions the profiles' trains resolve to now")
}

func (ch *clusterChange) setFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&ch.layer, "layer", "", "the layer whose values --values-file overrides, [PROFILE/]LAYER")
	f.StringVar(&ch.valuesFile, "values-file", "", `YAML values merged over the layer's ("-": standard input)`)
	f.StringArrayVar(&ch.variables, "set-variable", nil, "value of a profile variable, name=value (repeatable)")
}

func (ch *clusterChange) scaling() bool {
	return ch.pool != "" || len(ch.add) > 0 || len(ch.remove) > 0 || len(ch.hosts) > 0
}
func (ch *clusterChange) upgrading() bool { return len(ch.profiles) > 0 || ch.latest }
func (ch *clusterChange) setting() bool {
	return ch.layer != "" || ch.valuesFile != "" || len(ch.variables) > 0
}
func (ch *clusterChange) empty() bool { return !ch.scaling() && !ch.upgrading() && !ch.setting() }

// checkedChange is a change whose flags were checked and whose values
// file was read.
type checkedChange struct {
	*clusterChange
	values string
	vars   map[string]string
}

// check validates the flags before anything is read from the hub, so a
// typo costs no round trip; the values file is read here, once, because a
// retry after a conflict would find standard input empty.
func (ch *clusterChange) check(stdin io.Reader) (*checkedChange, error) {
	cc := &checkedChange{clusterChange: ch}
	if ch.scaling() {
		if ch.pool == "" {
			return nil, errors.New("pass --pool POOL with --add, --remove or --hosts")
		}
		if len(ch.hosts) > 0 && (len(ch.add) > 0 || len(ch.remove) > 0) {
			return nil, errors.New("--hosts gives the whole pool: leave out --add and --remove with it")
		}
		if len(ch.add)+len(ch.remove)+len(ch.hosts) == 0 {
			return nil, fmt.Errorf("pool %q: pass --add HOST, --remove HOST or --hosts h1,h2", ch.pool)
		}
		for _, h := range append(append(slices.Clone(ch.add), ch.remove...), ch.hosts...) {
			if strings.TrimSpace(h) == "" {
				return nil, errors.New("an empty host name in --add, --remove or --hosts")
			}
		}
		for _, h := range ch.add {
			if slices.Contains(ch.remove, h) {
				return nil, fmt.Errorf("host %s is both added and removed", h)
			}
		}
	}
	if len(ch.profiles) > 0 && ch.latest {
		return nil, errors.New("--latest takes the newest versions of the profiles the cluster runs: leave out --profile with it")
	}
	for _, ref := range ch.profiles {
		if _, _, err := parseProfileRef(ref, true); err != nil {
			return nil, err
		}
	}
	if (ch.layer == "") != (ch.valuesFile == "") {
		return nil, errors.New("--layer and --values-file go together: the values are merged over that layer's")
	}
	if ch.layer != "" {
		if _, layer, err := parseLayerRef(ch.layer); err != nil {
			return nil, err
		} else if layer == "" {
			return nil, fmt.Errorf("--layer %q: want [PROFILE/]LAYER", ch.layer)
		}
		values, err := readValuesFile(ch.valuesFile, stdin)
		if err != nil {
			return nil, err
		}
		cc.values = values
	}
	if len(ch.variables) > 0 {
		cc.vars = map[string]string{}
		for _, a := range ch.variables {
			k, v, ok := strings.Cut(a, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("--set-variable %q: want name=value", a)
			}
			if old, dup := cc.vars[k]; dup && old != v {
				return nil, fmt.Errorf("--set-variable: variable %q is set twice", k)
			}
			cc.vars[k] = v
		}
	}
	return cc, nil
}

// parseLayerRef splits "[PROFILE/]LAYER".
func parseLayerRef(s string) (profile, layer string, err error) {
	p, l, ok := strings.Cut(s, "/")
	if !ok {
		return "", s, nil
	}
	if p == "" || l == "" || strings.Contains(l, "/") {
		return "", "", fmt.Errorf("--layer %q: want [PROFILE/]LAYER", s)
	}
	return p, l, nil
}

// readValuesFile reads a layer's override values and checks they are a
// YAML mapping, so a wrong file fails here with its name rather than at
// the hub as a field of the cluster.
func readValuesFile(path string, stdin io.Reader) (string, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
		path = "standard input"
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("read values file: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return "", fmt.Errorf("values file %s: not a YAML mapping: %w", path, yamlError(err))
	}
	if len(m) == 0 {
		return "", fmt.Errorf("values file %s: no values in it", path)
	}
	return string(data), nil
}

// errNoChange is what apply reports when the cluster already is as asked.
var errNoChange = errors.New("no change")

// apply changes spec as the flags say and describes the change for
// people; errNoChange when the spec already is that way.
func (cc *checkedChange) apply(name string, spec *v1.ClusterSpec) ([]string, error) {
	var what []string
	if cc.scaling() {
		w, err := scalePool(name, spec, cc.pool, cc.add, cc.remove, cc.hosts)
		if err != nil {
			return nil, err
		}
		what = append(what, w...)
	}
	if cc.upgrading() {
		w, err := upgradeProfiles(name, spec, cc.profiles, cc.latest)
		if err != nil {
			return nil, err
		}
		what = append(what, w...)
	}
	if cc.layer != "" {
		what = append(what, overrideLayer(spec, cc.layer, cc.values)...)
	}
	for _, k := range sortedKeys(cc.vars) {
		if old, ok := spec.Variables[k]; ok && old == cc.vars[k] {
			continue
		}
		if spec.Variables == nil {
			spec.Variables = map[string]string{}
		}
		spec.Variables[k] = cc.vars[k]
		what = append(what, fmt.Sprintf("variable %s = %q", k, cc.vars[k]))
	}
	if len(what) == 0 {
		return nil, errNoChange
	}
	return what, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func scalePool(cluster string, spec *v1.ClusterSpec, pool string, add, remove, hosts []string) ([]string, error) {
	i := slices.IndexFunc(spec.Pools, func(p v1.NodePool) bool { return p.Name == pool })
	if i < 0 {
		names := make([]string, len(spec.Pools))
		for j, p := range spec.Pools {
			names[j] = p.Name
		}
		return nil, fmt.Errorf("cluster %q has no pool %q (its pools: %s)", cluster, pool, strings.Join(names, ", "))
	}
	p := &spec.Pools[i]
	before := slices.Clone(p.Hosts)
	inOther := func(h string) string {
		for _, o := range spec.Pools {
			if o.Name != pool && slices.Contains(o.Hosts, h) {
				return o.Name
			}
		}
		return ""
	}
	if len(hosts) > 0 {
		for j, h := range hosts {
			if slices.Contains(hosts[:j], h) {
				return nil, fmt.Errorf("--hosts names %s twice", h)
			}
			if o := inOther(h); o != "" {
				return nil, fmt.Errorf("host %s is in pool %q of cluster %q", h, o, cluster)
			}
		}
		p.Hosts = slices.Clone(hosts)
	}
	for _, h := range remove {
		j := slices.Index(p.Hosts, h)
		if j < 0 {
			return nil, fmt.Errorf("host %s is not in pool %q of cluster %q", h, pool, cluster)
		}
		p.Hosts = slices.Delete(p.Hosts, j, j+1)
	}
	for _, h := range add {
		if slices.Contains(p.Hosts, h) {
			return nil, fmt.Errorf("host %s is already in pool %q of cluster %q", h, pool, cluster)
		}
		if o := inOther(h); o != "" {
			return nil, fmt.Errorf("host %s is in pool %q of cluster %q", h, o, cluster)
		}
		p.Hosts = append(p.Hosts, h)
	}
	if slices.Equal(before, p.Hosts) {
		return nil, nil
	}
	strategy := p.UpdateStrategy
	if strategy == "" {
		strategy = v1.ExpandFirst
	}
	return []string{fmt.Sprintf("pool %s: %s → %s (%s)", pool, hostList(before), hostList(p.Hosts), strategy)}, nil
}

func hostList(hosts []string) string {
	if len(hosts) == 0 {
		return "no hosts"
	}
	return strings.Join(hosts, ",")
}

func upgradeProfiles(cluster string, spec *v1.ClusterSpec, refs []string, latest bool) ([]string, error) {
	var what []string
	for _, ref := range refs {
		name, version, _ := parseProfileRef(ref, true)
		i := slices.IndexFunc(spec.Profiles, func(p v1.ClusterProfileRef) bool { return p.Name == name })
		if i < 0 {
			runs := make([]string, len(spec.Profiles))
			for j, p := range spec.Profiles {
				runs[j] = p.Name + "@" + p.Version
			}
			return nil, fmt.Errorf("cluster %q does not run profile %q (it runs %s)", cluster, name, strings.Join(runs, ", "))
		}
		if spec.Profiles[i].Version == version {
			continue
		}
		what = append(what, fmt.Sprintf("profile %s %s → %s", name, spec.Profiles[i].Version, version))
		spec.Profiles[i].Version = version
	}
	if latest {
		spec.ResolveGeneration++
		what = append(what, fmt.Sprintf("resolve generation %d → %d: the trains' newest versions", spec.ResolveGeneration-1, spec.ResolveGeneration))
	}
	return what, nil
}

// overrideLayer sets the override of one layer. An override without a
// profile and one with it address the same layer when the layer name is
// unique, so they are one entry here: two would both be merged.
func overrideLayer(spec *v1.ClusterSpec, ref, values string) []string {
	profile, layer, _ := parseLayerRef(ref)
	for i := range spec.Overrides {
		ov := &spec.Overrides[i]
		if ov.Layer != layer || (ov.Profile != "" && profile != "" && ov.Profile != profile) {
			continue
		}
		if profile != "" {
			ov.Profile = profile
		}
		if ov.Values == values {
			return nil
		}
		ov.Values = values
		return []string{"values of layer " + ref + " replaced"}
	}
	spec.Overrides = append(spec.Overrides, v1.LayerOverride{Profile: profile, Layer: layer, Values: values})
	return []string{"values of layer " + ref + " overridden"}
}

// changeCluster reads the cluster, changes it with change and writes it
// with the revision it read; when someone else wrote in between, it reads
// and tries once more.
func changeCluster(ctx context.Context, c *client.Client, project, name string, change func(*v1.ClusterSpec) ([]string, error)) (*v1.Cluster, []string, error) {
	for attempt := 0; ; attempt++ {
		cur, err := c.GetCluster(ctx, project, name)
		if err != nil {
			return nil, nil, wrap(err, "get cluster %q", name)
		}
		switch cur.Status.State {
		case v1.ClusterDeleting, v1.ClusterDeleted:
			return nil, nil, fmt.Errorf("cluster %q is %s: it cannot change any more", name, cur.Status.State)
		}
		what, err := change(&cur.Spec)
		if err != nil {
			return nil, nil, err
		}
		out, err := c.UpdateCluster(ctx, project, cur)
		if errors.Is(err, client.ErrConflict) && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, nil, wrap(err, "update cluster %q", name)
		}
		return out, what, nil
	}
}

// runChange is the body of scale, upgrade and set.
func (o *options) runChange(cmd *cobra.Command, name string, ch *clusterChange) error {
	cc, err := ch.check(cmd.InOrStdin())
	if err != nil {
		return err
	}
	c, project, err := o.client(cmd)
	if err != nil {
		return err
	}
	out, what, err := changeCluster(cmd.Context(), c, project, name, func(spec *v1.ClusterSpec) ([]string, error) { return cc.apply(name, spec) })
	if errors.Is(err, errNoChange) {
		if _, err := fmt.Fprintf(cmd.ErrOrStderr(), "cluster %q already is that way: nothing to change\n", name); err != nil {
			return err
		}
		return nil
	}
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("cluster %q changed: %s\nthe hub rolls it out; follow it with: outpost clusters events %s --follow", name, strings.Join(what, "; "), name)
	return o.done(cmd, out, msg)
}

// --- commands ---

func newClustersCreateCommand(o *options) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create clusters from a YAML file of Cluster documents",
		Long: `create reads Cluster documents (see examples/cluster.yaml; "-" reads standard
input) and creates them. The hub checks the spec against the project's hosts
and profiles first; a created cluster is Pending until the hub's controller
claims its hosts and provisions them. "outpost apply -f" creates a cluster
too, or updates the spec of one that exists.`,
		Example: "  outpost clusters create -f examples/cluster.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New(`pass -f FILE (or "-" for standard input)`)
			}
			docs, err := readApplyDocs([]string{file}, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if len(docs) == 0 {
				return fmt.Errorf("%s: no documents", file)
			}
			for _, d := range docs {
				if d.kind != v1.KindCluster {
					return d.annotate(fmt.Errorf("create -f takes Cluster documents; use outpost apply -f for a %s", d.kind))
				}
			}
			c, defProject, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			var created []*v1.Cluster
			for _, d := range docs {
				project := d.project
				if project == "" {
					project = defProject
				}
				want := d.obj.(*v1.Cluster)
				out, err := c.CreateCluster(cmd.Context(), project, &v1.Cluster{Metadata: v1.ObjectMeta{Name: want.Metadata.Name, Labels: want.Metadata.Labels}, Spec: want.Spec})
				if err != nil {
					return d.annotate(wrap(err, "create cluster %q", want.Metadata.Name))
				}
				created = append(created, out)
				if p.format == outputTable {
					if _, err := fmt.Fprintf(p.out, "cluster %q created in project %q; follow it with: outpost clusters events %s --follow\n", want.Metadata.Name, project, want.Metadata.Name); err != nil {
						return err
					}
				}
			}
			if p.format == outputTable {
				return nil
			}
			if len(created) == 1 {
				return p.print(created[0], nil)
			}
			return p.print(created, nil)
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", `a YAML file of Cluster documents, or "-" for standard input`)
	return cmd
}

func newClustersListCommand(o *options) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:     "ls [--watch]",
		Aliases: []string{"list"},
		Short:   "List the project's clusters",
		Long: `ls lists the project's clusters: their state, health, how many of their hosts
are Ready nodes, their profiles and where their Kubernetes API answers. With
--watch it then prints every change as a row (the EVENT column says Added,
Modified or Deleted), or with -o json one JSON document per line, until
interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			list, err := c.ListClusters(ctx, project)
			if err != nil {
				return wrap(err, "list clusters in project %q", project)
			}
			if !watch {
				return printList(cmd, p, list, fmt.Sprintf("no clusters in project %q", project), clusterTable)
			}
			var emit func(v1.WatchEvent[v1.Cluster]) error
			if p.format == outputTable {
				t := clusterWatchTable(list.Items, p.now)
				if err := t.write(p.out); err != nil {
					return err
				}
				rw := &rowWriter{w: p.out, widths: t.widths()}
				emit = func(ev v1.WatchEvent[v1.Cluster]) error {
					return rw.write(append([]string{ev.Type}, clusterRow(&ev.Object, o.now())...)...)
				}
			} else {
				if err := p.printStream(list); err != nil {
					return err
				}
				emit = func(ev v1.WatchEvent[v1.Cluster]) error { return p.printStream(ev) }
			}
			err = follow(ctx, list.Revision, func(ctx context.Context, since int64) (<-chan v1.WatchEvent[v1.Cluster], <-chan error) {
				return c.WatchClusters(ctx, project, since)
			}, clusterKey, emit)
			if err != nil {
				return wrap(err, "watch clusters in project %q", project)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after the list, print changes until interrupted")
	return cmd
}

func newClustersGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a cluster: its state, every node's progress, its layers",
		Long: `get shows a cluster: a summary, then a row per node (the host, its pool and
role, its state, the step it runs with how many of its steps are done, and
what it last said), the layers the cluster runs towards with their
versions, the updates its profiles' trains offer, and its conditions. -o
yaml or -o json print the whole object.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			cl, err := c.GetCluster(cmd.Context(), project, args[0])
			if err != nil {
				return wrap(err, "get cluster %q", args[0])
			}
			if p.format != outputTable {
				return p.print(cl, nil)
			}
			return writeClusterDetails(p.out, cl, p.now)
		},
	}
}

// clusterObjects are the event objects ("Kind/name") that belong to a
// cluster: itself and every host it names or still holds.
func clusterObjects(name string, cl *v1.Cluster) map[string]bool {
	out := map[string]bool{v1.KindCluster + "/" + name: true}
	if cl == nil {
		return out
	}
	for _, h := range clusterHosts(&cl.Spec) {
		out[v1.KindEdgeHost+"/"+h] = true
	}
	for _, n := range cl.Status.Nodes {
		out[v1.KindEdgeHost+"/"+n.Host] = true
	}
	return out
}

func newClustersEventsCommand(o *options) *cobra.Command {
	var following bool
	cmd := &cobra.Command{
		Use:   "events NAME [--follow]",
		Short: "List the events of a cluster and of its hosts, newest last",
		Long: `events lists the events about a cluster and about the hosts it is made of
(joining, leaving, going offline), newest last. With --follow it then prints
new ones as they happen until interrupted; hosts added to the cluster
meanwhile are followed from then on. -o json prints the list and then one
JSON document per line.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cl, err := c.GetCluster(ctx, project, name)
			switch {
			case errors.Is(err, client.ErrNotFound):
				// A removed cluster's events outlive it; its hosts are
				// unknown now, so only its own are shown.
				if _, err := fmt.Fprintf(cmd.ErrOrStderr(), "cluster %q not found in project %q: showing the events about Cluster/%s only\n", name, project, name); err != nil {
					return err
				}
				cl = nil
			case err != nil:
				return wrap(err, "get cluster %q", name)
			}
			objs := clusterObjects(name, cl)
			// The hub filters by one object only: the rest is done here.
			all, err := c.ListEvents(ctx, project, client.EventFilter{})
			if err != nil {
				return wrap(err, "list events in project %q", project)
			}
			list := &v1.List[v1.Event]{Items: []v1.Event{}, Revision: all.Revision}
			for _, e := range all.Items {
				if objs[e.Object] {
					list.Items = append(list.Items, e)
				}
			}
			if !following {
				return printList(cmd, p, list, fmt.Sprintf("no events about cluster %q", name), eventTable)
			}

			var emit func(v1.WatchEvent[v1.Event]) error
			if p.format == outputTable {
				t := eventTable(list.Items, p.now)
				if err := t.write(p.out); err != nil {
					return err
				}
				rw := &rowWriter{w: p.out, widths: t.widths()}
				emit = func(ev v1.WatchEvent[v1.Event]) error { return rw.write(eventRow(&ev.Object, o.now())...) }
			} else {
				if err := p.printStream(list); err != nil {
					return err
				}
				emit = func(ev v1.WatchEvent[v1.Event]) error { return p.printStream(ev) }
			}
			clusterObject := v1.KindCluster + "/" + name
			filtered := func(ev v1.WatchEvent[v1.Event]) error {
				if ev.Type != v1.WatchAdded || !objs[ev.Object.Object] {
					return nil
				}
				if ev.Object.Object == clusterObject {
					// A spec change records an event on the cluster before
					// its controller claims new hosts, so reading the
					// cluster here catches their events from the first.
					if cur, err := c.GetCluster(ctx, project, name); err == nil {
						for k := range clusterObjects(name, cur) {
							objs[k] = true
						}
					}
				}
				return emit(ev)
			}
			err = follow(ctx, list.Revision, func(ctx context.Context, since int64) (<-chan v1.WatchEvent[v1.Event], <-chan error) {
				return c.WatchEvents(ctx, project, client.EventFilter{}, since)
			}, eventKey, filtered)
			if err != nil {
				return wrap(err, "follow events of cluster %q", name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&following, "follow", "f", false, "after the list, print new events until interrupted")
	return cmd
}

func newClustersScaleCommand(o *options) *cobra.Command {
	var ch clusterChange
	cmd := &cobra.Command{
		Use:   "scale NAME --pool POOL (--add HOST... | --remove HOST... | --hosts h1,h2,...)",
		Short: "Add hosts to a pool or remove them",
		Long: `scale changes the hosts of one pool: --add and --remove (together they
replace hosts), or --hosts for the whole list. The hub rolls the change out
by the pool's update strategy: expand-first starts new hosts before it
removes old ones, contract-first removes first. A control plane keeps 1, 3
or 5 hosts, and the host that created the cluster cannot leave it. It
reads the cluster and writes it with the revision it read; if someone
changed it in between it tries once more. "outpost clusters diff" with the
same flags shows what each host would do.`,
		Example: `  outpost clusters scale shop --pool workers --add edge-sim000004
  outpost clusters scale shop --pool workers --add edge-sim000004 --remove edge-sim000003`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !ch.scaling() {
				return errors.New("pass --pool POOL with --add HOST, --remove HOST or --hosts h1,h2")
			}
			return o.runChange(cmd, args[0], &ch)
		},
	}
	ch.scaleFlags(cmd)
	return cmd
}

func newClustersUpgradeCommand(o *options) *cobra.Command {
	var ch clusterChange
	cmd := &cobra.Command{
		Use:   "upgrade NAME (--profile NAME@VERSION ... | --latest)",
		Short: "Move a cluster to another profile version, or to its trains' newest versions",
		Long: `upgrade changes what a cluster runs. --profile NAME@VERSION replaces the
version of that profile (one the cluster runs). --latest takes the versions
the profiles' trains resolve to now: a cluster keeps the versions they
resolved to when it was made until asked ("outpost clusters get" lists the
updates available). The hub upgrades a new Kubernetes version one node at a
time, control plane first; other layers are reapplied where they changed.`,
		Example: `  outpost clusters upgrade shop --profile store-edge@1.1.0
  outpost clusters upgrade shop --latest`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !ch.upgrading() {
				return errors.New("pass --profile NAME@VERSION or --latest")
			}
			return o.runChange(cmd, args[0], &ch)
		},
	}
	ch.upgradeFlags(cmd)
	return cmd
}

func newClustersSetCommand(o *options) *cobra.Command {
	var ch clusterChange
	cmd := &cobra.Command{
		Use:   "set NAME (--layer [PROFILE/]LAYER --values-file FILE | --set-variable name=value ...)",
		Short: "Reconfigure a cluster: a layer's values, the profiles' variables",
		Long: `set reconfigures a cluster. --layer with --values-file merges the file's YAML
values over that layer's (replacing an override the layer had); PROFILE/ is
needed only when two profiles of the cluster have a layer of that name.
--set-variable sets a value of the profiles' variables. Only the layers
whose rendered values change are reapplied, on the nodes that run them.`,
		Example: `  outpost clusters set shop --layer calico --values-file calico-mtu.yaml
  outpost clusters set shop --set-variable siteCode=de-018`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !ch.setting() {
				return errors.New("pass --layer LAYER --values-file FILE, or --set-variable name=value")
			}
			return o.runChange(cmd, args[0], &ch)
		},
	}
	ch.setFlags(cmd)
	return cmd
}

func newClustersDiffCommand(o *options) *cobra.Command {
	var (
		ch   clusterChange
		file string
	)
	cmd := &cobra.Command{
		Use:   "diff NAME [-f PROPOSED.yaml | change flags]",
		Short: "Show what each host would do for a change, without making it",
		Long: `diff shows, host by host, what a change to a cluster would make it do, without
changing anything. The change is a Cluster document (-f; its spec counts),
or the flags of scale (--pool, --add, --remove, --hosts), upgrade (--profile,
--latest) and set (--layer with --values-file, --set-variable), built the way
those commands would build it. Without either it shows what the hosts still
have to do to reach the cluster's current spec.`,
		Example: `  outpost clusters diff shop --profile store-edge@1.1.0
  outpost clusters diff shop --pool workers --add edge-sim000004
  outpost clusters diff shop -f shop.yaml`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if file != "" && !ch.empty() {
				return errors.New("-f gives the whole proposed cluster: leave out the change flags with it")
			}
			var proposed *v1.ClusterSpec
			var cc *checkedChange
			if file != "" {
				spec, err := readProposedSpec(file, name, cmd.InOrStdin())
				if err != nil {
					return err
				}
				proposed = spec
			} else if !ch.empty() {
				var err error
				if cc, err = ch.check(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			c, project, p, err := o.session(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if cc != nil {
				cur, err := c.GetCluster(ctx, project, name)
				if err != nil {
					return wrap(err, "get cluster %q", name)
				}
				if _, err := cc.apply(name, &cur.Spec); err != nil && !errors.Is(err, errNoChange) {
					return err
				}
				proposed = &cur.Spec
			}
			d, err := c.DiffCluster(ctx, project, name, proposed)
			if err != nil {
				return wrap(err, "diff cluster %q", name)
			}
			if p.format != outputTable {
				return p.print(d, nil)
			}
			return writeDiff(p.out, d)
		},
	}
	ch.scaleFlags(cmd)
	ch.upgradeFlags(cmd)
	ch.setFlags(cmd)
	cmd.Flags().StringVarP(&file, "filename", "f", "", `a Cluster document with the proposed spec ("-": standard input)`)
	return cmd
}

// readProposedSpec reads the one Cluster document of a diff -f.
func readProposedSpec(file, name string, stdin io.Reader) (*v1.ClusterSpec, error) {
	docs, err := readApplyDocs([]string{file}, stdin)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("%s: %d documents; diff takes one Cluster", file, len(docs))
	}
	d := docs[0]
	if d.kind != v1.KindCluster {
		return nil, d.annotate(fmt.Errorf("diff takes a Cluster, not a %s", d.kind))
	}
	if d.name != name {
		return nil, d.annotate(fmt.Errorf("the document is cluster %q, not %q", d.name, name))
	}
	return &d.obj.(*v1.Cluster).Spec, nil
}

// errDeleted ends the watch of delete --wait.
var errDeleted = errors.New("deleted")

func newClustersDeleteCommand(o *options) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:     "delete NAME [--wait]",
		Aliases: []string{"rm"},
		Short:   "Tear a cluster down; its hosts return to Ready",
		Long: `delete tears a cluster down: every host removes what the cluster put on it and
returns to Ready as it confirms (spec.forceDeleteAfter releases hosts that do
not confirm in time). The cluster is then Deleted and stays listed with its
events; deleting it again removes it. With --wait, delete returns once the
cluster is Deleted, reporting the hosts still tearing down as it goes.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out, err := c.DeleteCluster(ctx, project, name)
			if err != nil {
				return wrap(err, "delete cluster %q", name)
			}
			if out != nil && out.Status.State == v1.ClusterDeleted {
				return o.done(cmd, out, fmt.Sprintf("cluster %q removed", name))
			}
			if !wait {
				return o.done(cmd, out, fmt.Sprintf("cluster %q is being deleted: its hosts tear down and return to Ready (outpost clusters events %s --follow)", name, name))
			}
			var since int64
			if out != nil {
				since = out.Metadata.Revision
			}
			last := out
			progress := ""
			err = follow(ctx, since, func(ctx context.Context, since int64) (<-chan v1.WatchEvent[v1.Cluster], <-chan error) {
				return c.WatchClusters(ctx, project, since)
			}, clusterKey, func(ev v1.WatchEvent[v1.Cluster]) error {
				if ev.Object.Metadata.Name != name {
					return nil
				}
				last = &ev.Object
				if ev.Type == v1.WatchDeleted || ev.Object.Status.State == v1.ClusterDeleted {
					return errDeleted
				}
				if p := teardownProgress(&ev.Object); p != progress {
					progress = p
					if _, err := fmt.Fprintln(cmd.ErrOrStderr(), p); err != nil {
						return err
					}
				}
				return nil
			})
			switch {
			case errors.Is(err, errDeleted):
				return o.done(cmd, last, fmt.Sprintf("cluster %q deleted: its hosts are Ready again", name))
			case err != nil:
				return wrap(err, "wait for cluster %q to be deleted", name)
			}
			// Interrupted: the teardown goes on; say so rather than succeed,
			// since a script waiting for the hosts would go on too early.
			return fmt.Errorf("stopped waiting: cluster %q is still being deleted (outpost clusters get %s)", name, name)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "return once the cluster is Deleted")
	return cmd
}

// teardownProgress names the hosts a Deleting cluster still waits for.
func teardownProgress(c *v1.Cluster) string {
	var left []string
	for _, n := range c.Status.Nodes {
		if n.State != v1.NodeRemoved {
			left = append(left, n.Host)
		}
	}
	if len(left) == 0 {
		return "all hosts torn down"
	}
	return "waiting for " + quantity(len(left), "host") + " to tear down: " + strings.Join(left, ", ")
}

func newClustersAbortCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "abort NAME",
		Short: "Stop a cluster that is still provisioning and tear it down",
		Long: `abort stops a Pending or Provisioning cluster and tears it down like a delete.
A cluster that is Running, Updating or Failed is deleted instead.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			out, err := c.AbortCluster(cmd.Context(), project, args[0])
			if err != nil {
				return wrap(err, "abort cluster %q", args[0])
			}
			return o.done(cmd, out, fmt.Sprintf("cluster %q aborted: its hosts tear down and return to Ready", args[0]))
		},
	}
}
