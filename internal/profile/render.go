package profile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// RenderOptions are the inputs of Render besides the profile and catalog.
type RenderOptions struct {
	// Resolver resolves layer versions; nil accepts exact versions only.
	Resolver Resolver
	// Vars are the cluster's values for the profile's variables.
	Vars map[string]string
}

// Render turns a profile into what a host receives: it normalizes and
// validates the profile, resolves the variables, and renders every layer in
// order (see the package documentation for the values pipeline). The same
// profile, catalog and variables always give byte-identical output.
func Render(p *v1.ClusterProfile, packs PackLookup, opts RenderOptions) (*v1.RenderedProfile, error) {
	pl, fl := check(p, packs, opts.Resolver)
	if err := fl.Err(); err != nil {
		return nil, err
	}
	vars, err := ResolveVariables(pl.p.Spec.Variables, opts.Vars)
	if err != nil {
		return nil, err
	}
	out := &v1.RenderedProfile{
		Profile: pl.p.Metadata.Name,
		Version: pl.p.Spec.Version,
		Type:    pl.p.Spec.Type,
		Layers:  make([]v1.RenderedLayer, 0, len(pl.layers)),
	}
	for _, lp := range pl.layers {
		// Variables that passed their checks can still break a layer (a
		// string with ": " in an unquoted spot), so errors are possible here.
		rl, lfl := pl.build(lp, vars)
		fl = append(fl, lfl...)
		if rl != nil {
			out.Layers = append(out.Layers, *rl)
		}
	}
	if err := fl.Err(); err != nil {
		return nil, err
	}
	if out.Hash, err = hashJSON(out.Layers); err != nil {
		return nil, err
	}
	return out, nil
}

// hashJSON is the sha256 (hex) of v's JSON form, which encoding/json writes
// deterministically for the v1 types (they have no maps).
func hashJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("hash: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// presetsFor is the layer's chosen presets with the automatic ones first,
// so that the person's own choices are applied over them.
func (pl *plan) presetsFor(lp *layerPlan) []string {
	chosen := lp.layer.Presets
	if lp.kind != v1.LayerK8s || !pl.hasCNI || slices.Contains(chosen, PresetExternalCNI) {
		return chosen
	}
	i := slices.IndexFunc(lp.version.Presets, func(p v1.Preset) bool { return p.Name == PresetExternalCNI })
	if i < 0 {
		return chosen
	}
	// A preset the person chose from the same group is a deliberate choice
	// of how the distro's own networking is set up: it wins.
	if g := lp.version.Presets[i].Group; g != "" {
		for _, p := range lp.version.Presets {
			if p.Group == g && slices.Contains(chosen, p.Name) {
				return chosen
			}
		}
	}
	return append([]string{PresetExternalCNI}, chosen...)
}

// build renders one layer: values are the pack version's defaults, then the
// presets, then the layer's own values rendered as a template; manifests
// (the pack's, then the attached ones) are rendered with the variables and
// the final values. Every problem is returned, each naming its field.
func (pl *plan) build(lp *layerPlan, vars map[string]string) (*v1.RenderedLayer, errs.FieldList) {
	var fl errs.FieldList
	l, pv := lp.layer, lp.version
	rl := &v1.RenderedLayer{Name: l.Name, Layer: lp.kind, Type: v1.PackManifest, Train: lp.train}
	base := newMap()
	if lp.pack != nil {
		rl.Pack, rl.Registry, rl.Type = lp.pack.Spec.Name, lp.pack.Spec.Registry, lp.pack.Spec.Type
	}
	if pv != nil {
		rl.Version = pv.Version
		if b, err := parseValues(pv.Values); err != nil {
			fl.Add(lp.field+".version", "the default values of %s %s: %v", lp.pack.Spec.Name, pv.Version, err)
		} else {
			base = b
		}
		if b, err := applyPresets(base, pv.Presets, pl.presetsFor(lp)); err != nil {
			fl.Add(lp.field+".presets", "%v", err)
		} else {
			base = b
		}
		rl.Artifacts = slices.Clone(pv.Artifacts)
		if pv.Chart != nil {
			c := *pv.Chart
			rl.Chart = &c
		}
		if lp.kind == v1.LayerK8s {
			rl.KubernetesVersion = kubernetesVersion(pv)
		}
	}

	values := base
	if text, err := renderTemplate("values", l.Values, templateData{Vars: vars}); err != nil {
		fl.Add(lp.field+".values", "%v", err)
	} else if o, err := parseValues(text); err != nil {
		if text != l.Values {
			err = fmt.Errorf("after rendering the template: %w", err)
		}
		fl.Add(lp.field+".values", "%v", err)
	} else {
		values = merge(base, o)
	}
	var err error
	if rl.Values, err = emit(values); err != nil {
		fl.Add(lp.field+".values", "%v", err)
	}

	data := templateData{Vars: vars, Values: map[string]any{}}
	if err := yaml.Unmarshal([]byte(rl.Values), &data.Values); err != nil {
		fl.Add(lp.field+".values", "%v", err)
	}
	names := map[string]bool{}
	if pv != nil {
		for _, m := range pv.Manifests {
			names[m.Name] = true
			content, err := renderManifest(m, data)
			if err != nil {
				fl.Add(lp.field+".version", "manifest %q of %s %s: %v", m.Name, lp.pack.Spec.Name, pv.Version, err)
				continue
			}
			rl.Manifests = append(rl.Manifests, v1.Manifest{Name: m.Name, Content: content})
		}
	}
	for i, m := range l.Manifests {
		field := fmt.Sprintf("%s.manifests[%d]", lp.field, i)
		if m.Name != "" {
			field = lp.field + ".manifests[" + m.Name + "]"
		}
		switch {
		case m.Name == "":
			fl.Add(field+".name", "is required")
		case names[m.Name]:
			fl.Add(field+".name", "manifest name %q is used twice in the layer (or by the pack)", m.Name)
		}
		names[m.Name] = true
		content, err := renderManifest(m, data)
		if err != nil {
			fl.Add(field+".content", "%v", err)
			continue
		}
		rl.Manifests = append(rl.Manifests, v1.Manifest{Name: m.Name, Content: content})
	}
	if len(fl) > 0 {
		return nil, fl
	}
	if rl.Hash, err = hashJSON(rl); err != nil {
		fl.Add(lp.field, "%v", err)
		return nil, fl
	}
	return rl, nil
}

// templateData is what `{{ … }}` sees: .Vars in values and manifests, and
// .Values (the layer's final values) in manifests.
type templateData struct {
	Vars   map[string]string
	Values map[string]any
}

// templateFuncs stay few on purpose: every function here is a promise to
// keep rendering profiles the same way.
var templateFuncs = template.FuncMap{
	// quote writes a double-quoted YAML string; Go's escapes are YAML's.
	"quote": func(s string) string { return strconv.Quote(s) },
}

// renderTemplate runs text as a Go template with missingkey=error. A
// reference to a variable that is not in data.Vars is reported by name
// before anything runs.
func renderTemplate(name, text string, data templateData) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return "", invalidf("%w", err)
	}
	var undeclared []string
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		walkVars(tt.Tree.Root, func(v string) {
			if _, ok := data.Vars[v]; !ok && !slices.Contains(undeclared, v) {
				undeclared = append(undeclared, v)
			}
		})
	}
	if len(undeclared) > 0 {
		slices.Sort(undeclared)
		return "", invalidf("uses undeclared variable %s: declare it in spec.variables", strings.Join(undeclared, ", "))
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", invalidf("%w", err)
	}
	return b.String(), nil
}

// walkVars calls fn with the name of every .Vars.NAME (or $.Vars.NAME) the
// template refers to.
func walkVars(n parse.Node, fn func(string)) {
	if n == nil {
		return
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkVars(c, fn)
		}
	case *parse.ActionNode:
		walkVars(n.Pipe, fn)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkVars(c, fn)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walkVars(a, fn)
		}
	case *parse.FieldNode:
		if len(n.Ident) >= 2 && n.Ident[0] == "Vars" {
			fn(n.Ident[1])
		}
	case *parse.VariableNode:
		if len(n.Ident) >= 3 && n.Ident[0] == "$" && n.Ident[1] == "Vars" {
			fn(n.Ident[2])
		}
	case *parse.ChainNode:
		walkVars(n.Node, fn)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, fn)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, fn)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, fn)
	case *parse.TemplateNode:
		walkVars(n.Pipe, fn)
	}
}

func walkBranch(b *parse.BranchNode, fn func(string)) {
	walkVars(b.Pipe, fn)
	walkVars(b.List, fn)
	walkVars(b.ElseList, fn)
}

func renderManifest(m v1.Manifest, data templateData) (string, error) {
	name := m.Name
	if name == "" {
		name = "manifest"
	}
	content, err := renderTemplate(name, m.Content, data)
	if err != nil {
		return "", err
	}
	if err := checkObjects(content); err != nil {
		return "", err
	}
	return content, nil
}

// checkObjects makes sure a manifest is a YAML stream of Kubernetes objects
// that an apply can name: apiVersion, kind and metadata.name. Empty
// documents (a stray ---) are allowed.
func checkObjects(content string) error {
	dec := yaml.NewDecoder(strings.NewReader(content))
	objects := 0
	for i := 1; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return invalidf("document %d: %w", i, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			continue
		}
		if root.Kind != yaml.MappingNode {
			return invalidf("document %d (line %d) is not a Kubernetes object", i, root.Line)
		}
		var obj struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		if err := root.Decode(&obj); err != nil {
			return invalidf("document %d (line %d): %w", i, root.Line, err)
		}
		var missing []string
		if obj.APIVersion == "" {
			missing = append(missing, "apiVersion")
		}
		if obj.Kind == "" {
			missing = append(missing, "kind")
		}
		if obj.Metadata.Name == "" {
			missing = append(missing, "metadata.name")
		}
		if len(missing) > 0 {
			return invalidf("document %d (line %d) has no %s", i, root.Line, strings.Join(missing, ", "))
		}
		objects++
	}
	if objects == 0 {
		return invalidf("has no Kubernetes objects")
	}
	return nil
}
