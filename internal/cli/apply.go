package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/client"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/profile"
)

// What apply did to an object.
const (
	applyCreated    = "created"
	applyConfigured = "configured"
	applyUnchanged  = "unchanged"
)

// applyKinds are the kinds apply knows, in the words of its errors.
var applyKinds = []string{v1.KindProject, v1.KindRegistrationToken, v1.KindEdgeHost, v1.KindRegistry, v1.KindClusterProfile, v1.KindCluster}

func newApplyCommand(o *options) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|- [-f ...]",
		Short: "Create or update the objects described in YAML files",
		Long: `apply reads YAML documents (several per file, separated by "---") and makes
the hub match them, in order: -f can be given more than once, a directory
applies every *.yaml and *.yml file in it in name order, and "-" reads
standard input. Every document is read and checked before the first is
applied.

  Project            created, or its description and labels updated
  RegistrationToken  created (its secret is printed once); an existing one is left alone
  EdgeHost           pre-registered, or the labels given set on the existing host
  Registry           created, or its spec and labels updated (hub admins)
  ClusterProfile     the version (spec.version) created, or updated while it is
                     unpublished; a published version cannot change: bump the version
  Cluster            created, or its spec and labels updated (the hub rolls the
                     change out; "outpost clusters diff" shows what it would do)

Objects that live in a project go to metadata.project, else to --project.
apply prints one line per object (kind/name created, configured or
unchanged) and stops at the first error, which names the file and document.`,
		Example: `  outpost apply -f edge-k3s.yaml
  outpost profiles get edge-k3s@1.0.0 -o yaml --export | outpost apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New(`pass -f FILE (or a directory, or "-" for standard input)`)
			}
			p, err := o.printer(cmd)
			if err != nil {
				return err
			}
			docs, err := readApplyDocs(files, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if len(docs) == 0 {
				return fmt.Errorf("%s: no documents to apply", strings.Join(files, ", "))
			}
			c, project, err := o.client(cmd)
			if err != nil {
				return err
			}
			a := &applier{c: c, project: project, out: p.out, format: p.format, results: []applyResult{}}
			err = a.apply(cmd.Context(), docs)
			if p.format != outputTable {
				if perr := p.print(a.results, nil); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, `a YAML file, a directory of them, or "-" for standard input (repeatable)`)
	return cmd
}

// applyDoc is one document to apply, decoded, with where it came from.
type applyDoc struct {
	source string // the file, or "stdin"
	index  int    // 1-based among the file's documents that are not empty
	kind   string
	name   string
	// project is metadata.project as written ("" for --project).
	project string
	// version is a ClusterProfile's spec.version as written.
	version string
	obj     any // *v1.Project, *v1.ClusterProfile, …
}

// String names the document the way errors do:
// "edge.yaml: document 2 (ClusterProfile edge-k3s@1.0.0)".
func (d *applyDoc) String() string {
	what := strings.TrimSpace(d.kind + " " + d.name)
	if d.kind == v1.KindClusterProfile && d.name != "" && d.version != "" {
		what += "@" + d.version
	}
	if what == "" {
		return fmt.Sprintf("%s: document %d", d.source, d.index)
	}
	return fmt.Sprintf("%s: document %d (%s)", d.source, d.index, what)
}

// annotate prefixes err with the document it is about.
func (d *applyDoc) annotate(err error) error { return fmt.Errorf("%s: %w", d, err) }

// readApplyDocs reads and decodes every document of every -f argument.
func readApplyDocs(args []string, stdin io.Reader) ([]*applyDoc, error) {
	var docs []*applyDoc
	readStdin := false
	for _, arg := range args {
		if arg == "-" {
			if readStdin {
				return nil, errors.New(`-f -: standard input can be read once`)
			}
			readStdin = true
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			d, err := decodeApplyDocs("stdin", data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
			continue
		}
		var files []string
		switch fi, err := os.Stat(arg); {
		case err != nil:
			return nil, fmt.Errorf("-f %s: %w", arg, err)
		case fi.IsDir():
			entries, err := os.ReadDir(arg)
			if err != nil {
				return nil, fmt.Errorf("-f %s: %w", arg, err)
			}
			// os.ReadDir sorts by name: the files apply in name order.
			for _, e := range entries {
				if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
					files = append(files, filepath.Join(arg, e.Name()))
				}
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("-f %s: the directory has no *.yaml or *.yml file", arg)
			}
		default:
			files = []string{arg}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", f, err)
			}
			d, err := decodeApplyDocs(f, data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
		}
	}
	return docs, nil
}

// rawDoc is one document's text and the line of the file it starts on.
type rawDoc struct {
	text string
	line int
}

// splitDocuments splits a YAML stream at its "---" lines. It splits the
// text rather than decoding the stream so that each document can be decoded
// on its own (a ClusterProfile by profile.Decode) with the line numbers of
// the file. YAML forbids "---" at the start of a line inside a document,
// so a line split is exact.
func splitDocuments(data []byte) []rawDoc {
	var docs []rawDoc
	var cur strings.Builder
	start := 1
	lines := strings.SplitAfter(string(data), "\n")
	for i, line := range lines {
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "---" || strings.HasPrefix(trimmed, "--- ") || strings.HasPrefix(trimmed, "---\t") {
			docs = append(docs, rawDoc{text: cur.String(), line: start})
			cur.Reset()
			start = i + 2
			// Content after the marker ("--- # comment", "--- {a: 1}")
			// belongs to the next document; blanks keep its columns.
			if rest := trimmed[3:]; strings.TrimSpace(rest) != "" {
				cur.WriteString("   " + rest + "\n")
				start = i + 1
			}
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, rawDoc{text: cur.String(), line: start})
}

// decodeApplyDocs decodes the documents of one file.
func decodeApplyDocs(source string, data []byte) ([]*applyDoc, error) {
	var out []*applyDoc
	for _, raw := range splitDocuments(data) {
		// Blank lines in front make the decoders' line numbers the file's.
		text := []byte(strings.Repeat("\n", raw.line-1) + raw.text)
		var root yaml.Node
		if err := yaml.Unmarshal(text, &root); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, len(out)+1, yamlError(err))
		}
		if len(root.Content) == 0 || root.Content[0].ShortTag() == "!!null" {
			continue // only comments, or a stray "---"
		}
		d := &applyDoc{source: source, index: len(out) + 1}
		out = append(out, d)
		top := root.Content[0]
		if top.Kind != yaml.MappingNode {
			return nil, d.annotate(fmt.Errorf("not an object (line %d): want apiVersion, kind, metadata and spec", top.Line))
		}
		d.kind = scalarAt(top, "kind")
		d.name = scalarAt(top, "metadata", "name")
		d.project = scalarAt(top, "metadata", "project")
		d.version = scalarAt(top, "spec", "version")
		if err := d.decode(text); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scalarAt is the scalar at a path of mapping keys, or "".
func scalarAt(n *yaml.Node, path ...string) string {
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return ""
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return ""
		}
		n = next
	}
	if n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// decode decodes the document strictly into its kind's type: an unknown
// key is a typo that would otherwise be dropped without a word.
func (d *applyDoc) decode(text []byte) error {
	if d.kind == v1.KindClusterProfile {
		// profile.Decode names fields by path (spec.layers[k3s].values)
		// and checks apiVersion itself.
		p, err := profile.Decode(text)
		if err != nil {
			return d.annotate(err)
		}
		d.obj = p
	} else {
		var obj any
		switch d.kind {
		case v1.KindProject:
			obj = &v1.Project{}
		case v1.KindRegistrationToken:
			obj = &v1.RegistrationToken{}
		case v1.KindEdgeHost:
			obj = &v1.EdgeHost{}
		case v1.KindRegistry:
			obj = &v1.Registry{}
		case v1.KindCluster:
			obj = &v1.Cluster{}
		case "":
			return d.annotate(errs.Field("kind", "is required (one of %s)", strings.Join(applyKinds, ", ")))
		default:
			return d.annotate(errs.Field("kind", "apply does not know %q: want one of %s", d.kind, strings.Join(applyKinds, ", ")))
		}
		dec := yaml.NewDecoder(bytes.NewReader(text))
		dec.KnownFields(true)
		if err := dec.Decode(obj); err != nil {
			return d.annotate(yamlError(err))
		}
		d.obj = obj
		var tm v1.TypeMeta
		switch o := obj.(type) {
		case *v1.Project:
			tm = o.TypeMeta
		case *v1.RegistrationToken:
			tm = o.TypeMeta
		case *v1.EdgeHost:
			tm = o.TypeMeta
		case *v1.Registry:
			tm = o.TypeMeta
		case *v1.Cluster:
			tm = o.TypeMeta
		}
		if tm.APIVersion != v1.APIVersion {
			return d.annotate(errs.Field("apiVersion", "must be %s, not %q", v1.APIVersion, tm.APIVersion))
		}
	}
	if d.name == "" {
		return d.annotate(errs.Field("metadata.name", "is required"))
	}
	return nil
}

// yamlError puts yaml.v3's multi-line type errors on one line.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

// applyResult is what apply did to one object; -o json|yaml prints them.
type applyResult struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Project string `json:"project,omitempty"`
	Version string `json:"version,omitempty"`
	Result  string `json:"result"`
	// Token is a registration token's secret, in the result that created
	// it: the only time it is shown.
	Token string `json:"token,omitempty"`
}

// applier applies documents in order and reports each.
type applier struct {
	c       *client.Client
	project string // --project
	out     io.Writer
	format  string
	results []applyResult
}

func (a *applier) apply(ctx context.Context, docs []*applyDoc) error {
	for _, d := range docs {
		project := d.project
		if project == "" {
			project = a.project
		}
		var (
			r   applyResult
			err error
		)
		// One retry when someone wrote between the read and the write.
		for attempt := 0; ; attempt++ {
			r, err = a.applyOne(ctx, d, project)
			if !errors.Is(err, client.ErrConflict) || attempt > 0 {
				break
			}
		}
		if err != nil {
			return d.annotate(err)
		}
		a.results = append(a.results, r)
		if a.format == outputTable {
			if err := a.report(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *applier) report(r applyResult) error {
	ref := strings.ToLower(r.Kind) + "/" + r.Name
	if r.Version != "" {
		ref += "@" + r.Version
	}
	line := ref + " " + r.Result
	if r.Token != "" {
		line += "\n  its secret, shown only now: " + r.Token
	}
	_, err := fmt.Fprintln(a.out, line)
	return err
}

func (a *applier) applyOne(ctx context.Context, d *applyDoc, project string) (applyResult, error) {
	switch o := d.obj.(type) {
	case *v1.Project:
		return a.applyProject(ctx, o)
	case *v1.RegistrationToken:
		return a.applyRegistrationToken(ctx, project, o)
	case *v1.EdgeHost:
		return a.applyHost(ctx, project, o)
	case *v1.Registry:
		return a.applyRegistry(ctx, o)
	case *v1.ClusterProfile:
		return a.applyProfile(ctx, project, o)
	case *v1.Cluster:
		return a.applyCluster(ctx, project, o)
	}
	return applyResult{}, fmt.Errorf("apply does not know %T", d.obj)
}

// sameLabels treats a missing and an empty label map alike, as the hub does.
func sameLabels(a, b map[string]string) bool { return maps.Equal(a, b) }

// sameJSON compares two values by their JSON form: what the hub stores.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func (a *applier) applyProject(ctx context.Context, want *v1.Project) (applyResult, error) {
	r := applyResult{Kind: v1.KindProject, Name: want.Metadata.Name}
	cur, err := a.c.GetProject(ctx, want.Metadata.Name)
	if errors.Is(err, client.ErrNotFound) {
		if _, err := a.c.CreateProject(ctx, &v1.Project{Metadata: v1.ObjectMeta{Name: want.Metadata.Name, Labels: want.Metadata.Labels}, Spec: want.Spec}); err != nil {
			return r, wrap(err, "create project %q", want.Metadata.Name)
		}
		r.Result = applyCreated
		return r, nil
	}
	if err != nil {
		return r, wrap(err, "get project %q", want.Metadata.Name)
	}
	if cur.Spec.Description == want.Spec.Description && sameLabels(cur.Metadata.Labels, want.Metadata.Labels) {
		r.Result = applyUnchanged
		return r, nil
	}
	cur.Spec.Description, cur.Metadata.Labels = want.Spec.Description, want.Metadata.Labels
	if _, err := a.c.UpdateProject(ctx, cur); err != nil {
		return r, wrap(err, "update project %q", want.Metadata.Name)
	}
	r.Result = applyConfigured
	return r, nil
}

func (a *applier) applyRegistrationToken(ctx context.Context, project string, want *v1.RegistrationToken) (applyResult, error) {
	name := want.Metadata.Name
	r := applyResult{Kind: v1.KindRegistrationToken, Name: name, Project: project}
	// An existing token is left alone: its secret is gone, and changing
	// what it grants under hosts already enrolled with it is not apply's
	// call. Revoke and recreate it to change it.
	_, err := a.c.GetRegistrationToken(ctx, project, name)
	if err == nil {
		r.Result = applyUnchanged
		return r, nil
	}
	if !errors.Is(err, client.ErrNotFound) {
		return r, wrap(err, "get registration token %q", name)
	}
	t := &v1.RegistrationToken{Metadata: v1.ObjectMeta{Name: name, Labels: want.Metadata.Labels}, Spec: want.Spec}
	out, err := a.c.CreateRegistrationToken(ctx, project, t)
	if err != nil {
		return r, wrap(err, "create registration token %q", name)
	}
	if out == nil || out.Token == "" {
		return r, fmt.Errorf("create registration token %q: the hub answered without its secret", name)
	}
	r.Result, r.Token = applyCreated, out.Token
	return r, nil
}

func (a *applier) applyHost(ctx context.Context, project string, want *v1.EdgeHost) (applyResult, error) {
	id := want.Metadata.Name
	r := applyResult{Kind: v1.KindEdgeHost, Name: id, Project: project}
	labels := maps.Clone(want.Metadata.Labels)
	if dn := want.Spec.DisplayName; dn != "" {
		// spec.displayName mirrors the "name" label; writing it is writing
		// that label.
		if labels == nil {
			labels = map[string]string{}
		}
		if l, ok := labels[v1.LabelName]; ok && l != dn {
			return r, errs.Field("spec.displayName", "%q differs from the %q label %q, which it mirrors", dn, v1.LabelName, l)
		}
		labels[v1.LabelName] = dn
	}
	cur, err := a.c.GetHost(ctx, project, id)
	if errors.Is(err, client.ErrNotFound) {
		if _, err := a.c.RegisterHost(ctx, project, &v1.EdgeHost{Metadata: v1.ObjectMeta{Name: id, Labels: labels}}); err != nil {
			return r, wrap(err, "register host %q", id)
		}
		r.Result = applyCreated
		return r, nil
	}
	if err != nil {
		return r, wrap(err, "get host %q", id)
	}
	// Only the labels the document names are set: the agent and people add
	// labels of their own, which a document that does not know them must
	// not remove.
	set := map[string]string{}
	for k, v := range labels {
		if old, ok := cur.Metadata.Labels[k]; !ok || old != v {
			set[k] = v
		}
	}
	if len(set) == 0 {
		r.Result = applyUnchanged
		return r, nil
	}
	if _, err := a.c.PatchHostLabels(ctx, project, id, cur.Metadata.Revision, set, nil); err != nil {
		return r, wrap(err, "label host %q", id)
	}
	r.Result = applyConfigured
	return r, nil
}

func (a *applier) applyRegistry(ctx context.Context, want *v1.Registry) (applyResult, error) {
	name := want.Metadata.Name
	r := applyResult{Kind: v1.KindRegistry, Name: name}
	// Read first: registries are readable by every token, so a document
	// that matches the hub applies as "unchanged" without hub-admin rights.
	cur, err := a.c.GetRegistry(ctx, name)
	if errors.Is(err, client.ErrNotFound) {
		out, err := a.c.CreateRegistry(ctx, &v1.Registry{Metadata: v1.ObjectMeta{Name: name, Labels: want.Metadata.Labels}, Spec: want.Spec})
		if err != nil {
			return r, wrap(err, "create registry %q", name)
		}
		r.Result = applyCreated
		return r, syncFailure(name, out)
	}
	if err != nil {
		return r, wrap(err, "get registry %q", name)
	}
	if sameJSON(cur.Spec, want.Spec) && sameLabels(cur.Metadata.Labels, want.Metadata.Labels) {
		r.Result = applyUnchanged
		return r, nil
	}
	cur.Spec, cur.Metadata.Labels = want.Spec, want.Metadata.Labels
	out, err := a.c.UpdateRegistry(ctx, cur)
	if err != nil {
		return r, wrap(err, "update registry %q", name)
	}
	r.Result = applyConfigured
	return r, syncFailure(name, out)
}

// syncFailure turns the failed first sync of a registry just written into
// an error: profiles later in the file would fail on its missing packs
// with a less helpful message.
func syncFailure(name string, r *v1.Registry) error {
	if r != nil && registrySyncFailed(r) {
		return fmt.Errorf("registry %q was written, but its sync failed: %s", name, r.Status.LastError)
	}
	return nil
}

func (a *applier) applyProfile(ctx context.Context, project string, doc *v1.ClusterProfile) (applyResult, error) {
	want := profile.DeepCopy(doc)
	profile.Normalize(want)
	name, version := want.Metadata.Name, want.Spec.Version
	r := applyResult{Kind: v1.KindClusterProfile, Name: name, Project: project, Version: version}
	if version == "" {
		return r, errs.Field("spec.version", "is required: each version of a profile is its own object")
	}
	if version == client.LatestVersion {
		return r, errs.Field("spec.version", "%q names the newest version; give a version such as 1.0.0", version)
	}
	cur, err := a.c.GetProfile(ctx, project, name, version)
	if errors.Is(err, client.ErrNotFound) {
		in := &v1.ClusterProfile{TypeMeta: want.TypeMeta, Metadata: v1.ObjectMeta{Name: name, Labels: want.Metadata.Labels}, Spec: want.Spec}
		if _, err := a.c.CreateProfile(ctx, project, in); err != nil {
			return r, err
		}
		r.Result = applyCreated
		return r, nil
	}
	if err != nil {
		return r, wrap(err, "get profile %s@%s", name, version)
	}
	// Publishing is one-way: a document written before the version was
	// published (published: false, or not said) does not ask to unpublish.
	if cur.Spec.Published && !want.Spec.Published {
		want.Spec.Published = true
	}
	sameSpec := sameJSON(cur.Spec, want.Spec)
	if sameSpec && sameLabels(cur.Metadata.Labels, want.Metadata.Labels) {
		r.Result = applyUnchanged
		return r, nil
	}
	if cur.Spec.Published && !sameSpec {
		old := profile.DeepCopy(cur)
		old.Status = v1.ClusterProfileStatus{}
		var fields []string
		var fl errs.FieldList
		if errors.As(profile.CheckUpdate(old, want), &fl) {
			for _, fe := range fl {
				fields = append(fields, fe.Field)
			}
		}
		what := ""
		if len(fields) > 0 {
			what = " (the document changes " + strings.Join(fields, ", ") + ")"
		}
		return r, fmt.Errorf("profile %s@%s is published and cannot change%s; bump the version (outpost profiles bump %s@%s --part patch) and apply the changes to the new one, or give spec.version a new version",
			name, version, what, name, version)
	}
	up := &v1.ClusterProfile{TypeMeta: want.TypeMeta, Metadata: v1.ObjectMeta{Name: name, Labels: want.Metadata.Labels, Revision: cur.Metadata.Revision}, Spec: want.Spec}
	if _, err := a.c.UpdateProfile(ctx, project, up); err != nil {
		return r, err
	}
	r.Result = applyConfigured
	return r, nil
}

// applyCluster creates a cluster, or replaces the spec and labels of the
// one that exists with the revision just read.
func (a *applier) applyCluster(ctx context.Context, project string, want *v1.Cluster) (applyResult, error) {
	name := want.Metadata.Name
	r := applyResult{Kind: v1.KindCluster, Name: name, Project: project}
	spec := defaultedClusterSpec(want.Spec)
	cur, err := a.c.GetCluster(ctx, project, name)
	if errors.Is(err, client.ErrNotFound) {
		if _, err := a.c.CreateCluster(ctx, project, &v1.Cluster{Metadata: v1.ObjectMeta{Name: name, Labels: want.Metadata.Labels}, Spec: spec}); err != nil {
			return r, wrap(err, "create cluster %q", name)
		}
		r.Result = applyCreated
		return r, nil
	}
	if err != nil {
		return r, wrap(err, "get cluster %q", name)
	}
	if sameJSON(cur.Spec, spec) && sameLabels(cur.Metadata.Labels, want.Metadata.Labels) {
		r.Result = applyUnchanged
		return r, nil
	}
	up := &v1.Cluster{Metadata: v1.ObjectMeta{Name: name, Labels: want.Metadata.Labels, Revision: cur.Metadata.Revision}, Spec: spec}
	if _, err := a.c.UpdateCluster(ctx, project, up); err != nil {
		return r, wrap(err, "update cluster %q", name)
	}
	r.Result = applyConfigured
	return r, nil
}

// defaultedClusterSpec fills in what the hub defaults (a pool's update
// strategy), so that a document that leaves it out compares equal to the
// stored spec and applies as unchanged.
func defaultedClusterSpec(spec v1.ClusterSpec) v1.ClusterSpec {
	spec.Pools = slices.Clone(spec.Pools)
	for i := range spec.Pools {
		if spec.Pools[i].UpdateStrategy == "" {
			spec.Pools[i].UpdateStrategy = v1.ExpandFirst
		}
	}
	return spec
}
