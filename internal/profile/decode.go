package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// Decode reads one ClusterProfile from YAML (or JSON, which is YAML).
// Unknown keys and values of the wrong type are errs.FieldList entries that
// name the key by its path and line; apiVersion and kind must be
// outpost.dev/v1 ClusterProfile. Decode does not validate the profile: that
// needs the pack catalog (see Validate).
func Decode(data []byte) (*v1.ClusterProfile, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, invalidf("cluster profile: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, invalidf("cluster profile: the document is empty")
	}
	if doc.Content[0].Kind != yaml.MappingNode {
		return nil, invalidf("cluster profile: the document must be a mapping (line %d)", doc.Content[0].Line)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	p := &v1.ClusterProfile{}
	err := dec.Decode(p)
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return nil, typeErrors(&doc, te)
	}
	if err != nil {
		return nil, invalidf("cluster profile: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, invalidf("cluster profile: more than one YAML document")
	}
	var fl errs.FieldList
	switch p.APIVersion {
	case v1.APIVersion:
	case "":
		fl.Add("apiVersion", "is required (%s)", v1.APIVersion)
	default:
		fl.Add("apiVersion", "must be %s, not %q", v1.APIVersion, p.APIVersion)
	}
	switch p.Kind {
	case v1.KindClusterProfile:
	case "":
		fl.Add("kind", "is required (%s)", v1.KindClusterProfile)
	default:
		fl.Add("kind", "must be %s, not %q", v1.KindClusterProfile, p.Kind)
	}
	if err := fl.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// nodeIndex maps lines of a document to field paths, so that yaml.v3's
// "line N: …" errors can name the field a person has to fix.
type nodeIndex struct {
	keys   map[lineKey]string // a key on a line → its path
	values map[int][]valueAt  // the values starting on a line, outermost first
}

type valueAt struct {
	path string
	kind yaml.Kind
}

type lineKey struct {
	line int
	key  string
}

func indexNodes(doc *yaml.Node) *nodeIndex {
	idx := &nodeIndex{keys: map[lineKey]string{}, values: map[int][]valueAt{}}
	if len(doc.Content) > 0 {
		idx.walk(doc.Content[0], "")
	}
	return idx
}

func (idx *nodeIndex) walk(n *yaml.Node, path string) {
	if path != "" {
		idx.values[n.Line] = append(idx.values[n.Line], valueAt{path, n.Kind})
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			idx.keys[lineKey{k.Line, k.Value}] = p
			idx.walk(n.Content[i+1], p)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			idx.walk(item, fmt.Sprintf("%s[%s]", path, itemLabel(path, item, i)))
		}
	}
}

// itemLabel names a list item the way Validate does: layers by name (or
// pack), variables and manifests by name, anything else by index.
func itemLabel(path string, item *yaml.Node, i int) string {
	var keys []string
	switch {
	case path == "spec.layers":
		keys = []string{"name", "pack"}
	case path == "spec.variables", strings.HasSuffix(path, ".manifests"):
		keys = []string{"name"}
	}
	if item.Kind == yaml.MappingNode {
		for _, want := range keys {
			for j := 0; j+1 < len(item.Content); j += 2 {
				if item.Content[j].Value == want && item.Content[j+1].Kind == yaml.ScalarNode && item.Content[j+1].Value != "" {
					return item.Content[j+1].Value
				}
			}
		}
	}
	return strconv.Itoa(i)
}

// typeErrors turns yaml.v3's type errors into field errors.
func typeErrors(doc *yaml.Node, te *yaml.TypeError) errs.FieldList {
	idx := indexNodes(doc)
	var fl errs.FieldList
	for _, msg := range te.Errors {
		line := 0
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, after, ok := strings.Cut(rest, ": "); ok {
				if l, err := strconv.Atoi(n); err == nil {
					line, msg = l, after
				}
			}
		}
		var field, text string
		if rest, ok := strings.CutPrefix(msg, "field "); ok && strings.Contains(rest, " not found in type ") {
			name, _, _ := strings.Cut(rest, " not found in type ")
			field, text = idx.keys[lineKey{line, name}], "unknown key"
			if field == "" {
				field = name
			}
		} else {
			field, text = idx.valueField(line, msg), friendlyTypeError(msg)
		}
		if field == "" {
			field = "clusterProfile"
		}
		if line > 0 {
			text = fmt.Sprintf("%s (line %d)", text, line)
		}
		fl = append(fl, &errs.FieldError{Field: field, Message: text})
	}
	return fl
}

// valueField names the value a type error is about: on its line, the one
// of the kind yaml.v3 could not decode (`a: {b: 1}` starts a mapping and a
// scalar on one line), else the innermost.
func (idx *nodeIndex) valueField(line int, msg string) string {
	vs := idx.values[line]
	if len(vs) == 0 {
		return ""
	}
	kind := yaml.ScalarNode
	switch {
	case strings.Contains(msg, "unmarshal !!map"):
		kind = yaml.MappingNode
	case strings.Contains(msg, "unmarshal !!seq"):
		kind = yaml.SequenceNode
	}
	for _, v := range vs {
		if v.kind == kind {
			return v.path
		}
	}
	return vs[len(vs)-1].path
}

// friendlyTypeError rewrites "cannot unmarshal !!map into string" as what
// the person has to write instead.
func friendlyTypeError(msg string) string {
	got := ""
	if _, after, ok := strings.Cut(msg, "cannot unmarshal "); ok {
		got, _, _ = strings.Cut(after, " ")
		switch got {
		case "!!map":
			got = "a mapping"
		case "!!seq":
			got = "a list"
		default:
			got = strings.Trim(got, "`")
		}
	}
	into := msg
	if _, after, ok := strings.Cut(msg, " into "); ok {
		into = after
	}
	var want string
	switch {
	case strings.HasPrefix(into, "int"), strings.HasPrefix(into, "uint"):
		want = "must be a whole number"
	case strings.HasPrefix(into, "bool"):
		want = "must be true or false"
	case strings.HasPrefix(into, "[]"):
		want = "must be a list"
	case strings.HasPrefix(into, "map["), strings.HasPrefix(into, "v1."), strings.HasPrefix(into, "*v1."):
		want = "must be a mapping"
	case strings.HasPrefix(into, "string"):
		want = "must be a string (a block scalar `|` for YAML text)"
	case strings.HasPrefix(into, "time."):
		want = "must be a timestamp (2006-01-02T15:04:05Z)"
	default:
		return msg
	}
	if got != "" {
		return want + ", not " + got
	}
	return want
}
