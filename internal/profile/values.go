package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// maxValueNodes bounds a values document after aliases are expanded, so a
// "billion laughs" document cannot exhaust the hub's memory.
const maxValueNodes = 100_000

// vnode is one node of a values tree. Values are kept as YAML nodes rather
// than decoded Go values so that scalars survive exactly as written: decoding
// `version: 1.30` into a float64 and writing it back gives `1.3`.
type vnode struct {
	kind  yaml.Kind // MappingNode, SequenceNode or ScalarNode
	tag   string    // resolved short tag of a scalar (!!str, !!int, !!null, …)
	value string    // scalar text
	m     map[string]*vnode
	items []*vnode
}

func (n *vnode) isNull() bool { return n.kind == yaml.ScalarNode && n.tag == "!!null" }
func (n *vnode) isMap() bool  { return n.kind == yaml.MappingNode }

func newMap() *vnode { return &vnode{kind: yaml.MappingNode, m: map[string]*vnode{}} }

// invalidError reads as its message but is an errs.ErrInvalid, so the API
// answers 422 without an "invalid:" prefix in front of a readable message.
type invalidError struct{ err error }

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{errs.ErrInvalid, e.err} }

func invalidf(format string, args ...any) error {
	return &invalidError{err: fmt.Errorf(format, args...)}
}

// parseValues reads a values document into a tree whose root is a mapping.
// An empty document (or a bare null) is an empty mapping.
func parseValues(s string) (*vnode, error) {
	dec := yaml.NewDecoder(strings.NewReader(s))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return newMap(), nil
	}
	if err != nil {
		return nil, invalidf("%w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, invalidf("values must be a single YAML document")
	}
	c := &converter{}
	root, err := c.convert(&doc, nil)
	if err != nil {
		return nil, err
	}
	if root.isNull() {
		return newMap(), nil
	}
	if !root.isMap() {
		return nil, invalidf("values must be a mapping, not %s", kindName(root))
	}
	return root, nil
}

func kindName(n *vnode) string {
	switch n.kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a scalar (" + strings.TrimPrefix(n.tag, "!!") + ")"
}

// converter turns yaml.Nodes into vnodes, expanding aliases and merge keys
// (`<<: *defaults`) because the output has neither: each value is spelled
// out so that a later merge can change one copy without touching another.
type converter struct {
	nodes int
	stack []*yaml.Node // alias targets being expanded, to refuse cycles
}

func (c *converter) convert(n *yaml.Node, path []string) (*vnode, error) {
	c.nodes++
	if c.nodes > maxValueNodes {
		return nil, invalidf("values have more than %d nodes once aliases are expanded", maxValueNodes)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &vnode{kind: yaml.ScalarNode, tag: "!!null", value: "null"}, nil
		}
		return c.convert(n.Content[0], path)
	case yaml.AliasNode:
		if slices.Contains(c.stack, n.Alias) {
			return nil, invalidf("%s: alias *%s refers to itself", pathText(path), n.Value)
		}
		c.stack = append(c.stack, n.Alias)
		defer func() { c.stack = c.stack[:len(c.stack)-1] }()
		return c.convert(n.Alias, path)
	case yaml.ScalarNode:
		return scalar(n), nil
	case yaml.SequenceNode:
		out := &vnode{kind: yaml.SequenceNode, items: make([]*vnode, 0, len(n.Content))}
		for i, item := range n.Content {
			v, err := c.convert(item, append(slices.Clip(path), fmt.Sprintf("[%d]", i)))
			if err != nil {
				return nil, err
			}
			out.items = append(out.items, v)
		}
		return out, nil
	case yaml.MappingNode:
		return c.mapping(n, path)
	}
	return nil, invalidf("%s: unsupported YAML node", pathText(path))
}

func (c *converter) mapping(n *yaml.Node, path []string) (*vnode, error) {
	out := newMap()
	var merged []*vnode // maps named by merge keys, in order of precedence
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return nil, invalidf("%s: keys must be scalars (line %d)", pathText(path), k.Line)
		}
		if k.ShortTag() == "!!merge" {
			ms, err := c.mergeSources(val, path)
			if err != nil {
				return nil, err
			}
			merged = append(merged, ms...)
			continue
		}
		// Keys are strings, as in JSON: Helm and Kubernetes read values that
		// way, so `1:` and `"1":` are the same key.
		key := k.Value
		if _, dup := out.m[key]; dup {
			return nil, invalidf("%s: key %q is given twice (line %d)", pathText(path), key, k.Line)
		}
		v, err := c.convert(val, append(slices.Clip(path), key))
		if err != nil {
			return nil, err
		}
		out.m[key] = v
	}
	// Explicit keys win over merged ones, and earlier merge sources over
	// later ones, as the YAML merge key type says.
	for _, src := range merged {
		for k, v := range src.m {
			if _, ok := out.m[k]; !ok {
				out.m[k] = v
			}
		}
	}
	return out, nil
}

func (c *converter) mergeSources(val *yaml.Node, path []string) ([]*vnode, error) {
	v, err := c.convert(val, path)
	if err != nil {
		return nil, err
	}
	if v.isMap() {
		return []*vnode{v}, nil
	}
	if v.kind == yaml.SequenceNode {
		for _, item := range v.items {
			if !item.isMap() {
				return nil, invalidf("%s: a merge key (<<) takes mappings only (line %d)", pathText(path), val.Line)
			}
		}
		return v.items, nil
	}
	return nil, invalidf("%s: a merge key (<<) takes mappings only (line %d)", pathText(path), val.Line)
}

// scalar keeps the resolved tag and the text; null and booleans get one
// spelling each so that `~`, `null` and an empty value hash the same.
func scalar(n *yaml.Node) *vnode {
	tag := n.ShortTag()
	value := n.Value
	switch tag {
	case "!!null":
		value = "null"
	case "!!bool":
		value = strings.ToLower(value)
	}
	return &vnode{kind: yaml.ScalarNode, tag: tag, value: value}
}

// pathText spells a key path for messages, quoting keys with dots the same
// way preset Remove paths do.
func pathText(path []string) string {
	if len(path) == 0 {
		return "values"
	}
	var b strings.Builder
	for i, p := range path {
		if strings.HasPrefix(p, "[") {
			b.WriteString(p)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if p == "" || strings.ContainsAny(p, `."\[`) {
			b.WriteString(quoteKey(p))
		} else {
			b.WriteString(p)
		}
	}
	return b.String()
}

func quoteKey(k string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(k) + `"`
}

// emit writes a tree as canonical YAML: keys sorted, two-space indent, no
// comments, anchors or styles of the source. An empty mapping is "".
func emit(root *vnode) (string, error) {
	if root.isMap() && len(root.m) == 0 {
		return "", nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(toNode(root)); err != nil {
		return "", fmt.Errorf("encode values: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("encode values: %w", err)
	}
	return buf.String(), nil
}

func toNode(n *vnode) *yaml.Node {
	switch n.kind {
	case yaml.MappingNode:
		out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range sortedKeys(n.m) {
			out.Content = append(out.Content, strNode(k), toNode(n.m[k]))
		}
		return out
	case yaml.SequenceNode:
		out := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, item := range n.items {
			out.Content = append(out.Content, toNode(item))
		}
		return out
	}
	if n.tag == "!!str" {
		return strNode(n.value)
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: n.tag, Value: n.value}
}

// reYAML11 matches plain scalars that YAML 1.2 (yaml.v3) reads as strings
// but YAML 1.1 reads as booleans or base-60 numbers. Helm and Kubernetes
// read values with a YAML 1.1 parser (sigs.k8s.io/yaml), so such strings are
// quoted to keep meaning "off", not false.
var reYAML11 = regexp.MustCompile(`^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)$`)

func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	// yaml.v3 drops a leading line break when it writes a literal block,
	// so such strings are double-quoted, which keeps every byte.
	if reYAML11.MatchString(s) || strings.HasPrefix(s, "\n") {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

func sortedKeys(m map[string]*vnode) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// merge returns override deep-merged over base. Neither input is changed;
// the result may share subtrees with both, which is safe because trees are
// never modified in place after they are built.
func merge(base, override *vnode) *vnode {
	if !override.isMap() {
		return override
	}
	if base == nil || !base.isMap() {
		base = newMap()
	}
	out := &vnode{kind: yaml.MappingNode, m: make(map[string]*vnode, len(base.m)+len(override.m))}
	for k, v := range base.m {
		out.m[k] = v
	}
	for k, v := range override.m {
		if v.isNull() {
			// A null in an override is how a person deletes a default.
			delete(out.m, k)
			continue
		}
		out.m[k] = merge(out.m[k], v)
	}
	return out
}

// CanonicalValues returns values in the canonical form MergeValues writes:
// keys sorted, one spelling per document, "" for an empty one. Equal values
// give equal text, so the text can be hashed.
func CanonicalValues(values string) (string, error) {
	root, err := parseValues(values)
	if err != nil {
		return "", err
	}
	return emit(root)
}

// MergeValues deep-merges the override values over base (both YAML
// mappings) and returns canonical YAML. Mappings merge key by key; anything
// else in the override (a scalar, a list, a mapping over a scalar) replaces
// what base has; a null in the override deletes the key.
func MergeValues(base, override string) (string, error) {
	b, err := parseValues(base)
	if err != nil {
		return "", fmt.Errorf("base values: %w", err)
	}
	o, err := parseValues(override)
	if err != nil {
		return "", fmt.Errorf("override values: %w", err)
	}
	return emit(merge(b, o))
}

// ApplyPresets switches on the chosen presets, in order, over values: each
// preset's Remove paths are deleted, then its Add values merged in. Choosing
// an unknown preset, the same preset twice, or two presets of one Group is
// an error.
func ApplyPresets(values string, presets []v1.Preset, chosen []string) (string, error) {
	root, err := parseValues(values)
	if err != nil {
		return "", err
	}
	root, err = applyPresets(root, presets, chosen)
	if err != nil {
		return "", err
	}
	return emit(root)
}

func applyPresets(root *vnode, presets []v1.Preset, chosen []string) (*vnode, error) {
	byName := make(map[string]*v1.Preset, len(presets))
	for i := range presets {
		byName[presets[i].Name] = &presets[i]
	}
	groupOwner := map[string]string{}
	seen := map[string]bool{}
	for _, name := range chosen {
		p, ok := byName[name]
		if !ok {
			return nil, invalidf("preset %q: the pack has no such preset", name)
		}
		if seen[name] {
			return nil, invalidf("preset %q is chosen twice", name)
		}
		seen[name] = true
		if p.Group != "" {
			if other, ok := groupOwner[p.Group]; ok {
				return nil, invalidf("presets %q and %q are both in group %q: choose one", other, name, p.Group)
			}
			groupOwner[p.Group] = name
		}
		for _, r := range p.Remove {
			path, err := ParseKeyPath(r)
			if err != nil {
				return nil, invalidf("preset %q: remove %q: %w", name, r, err)
			}
			root = removePath(root, path)
		}
		add, err := parseValues(p.Add)
		if err != nil {
			return nil, invalidf("preset %q: add: %w", name, err)
		}
		root = merge(root, add)
	}
	return root, nil
}

// removePath returns root without the key at path. A path that is not there
// is fine: presets are written against a pack's defaults, which a layer's
// own values or an earlier preset may already have changed.
func removePath(root *vnode, path []string) *vnode {
	if !root.isMap() {
		return root
	}
	child, ok := root.m[path[0]]
	if !ok {
		return root
	}
	out := &vnode{kind: yaml.MappingNode, m: make(map[string]*vnode, len(root.m))}
	for k, v := range root.m {
		out.m[k] = v
	}
	if len(path) == 1 {
		delete(out.m, path[0])
	} else {
		out.m[path[0]] = removePath(child, path[1:])
	}
	return out
}

// ParseKeyPath splits a dotted key path (`cluster.config.disable`) into its
// keys. A key holding dots or quotes is written in double quotes, with \" and
// \\ escapes: `nodeSelector."kubernetes.io/os"`.
func ParseKeyPath(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty key path")
	}
	var keys []string
	i := 0
	for {
		var key string
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return nil, errors.New("unterminated quote")
			}
			key = b.String()
			if i < len(s) && s[i] != '.' {
				return nil, fmt.Errorf("a quoted key must be followed by a dot or the end, at offset %d", i)
			}
		} else {
			j := strings.IndexByte(s[i:], '.')
			if j < 0 {
				j = len(s) - i
			}
			key = s[i : i+j]
			if key == "" {
				return nil, fmt.Errorf("empty key at offset %d", i)
			}
			if strings.Contains(key, `"`) {
				return nil, fmt.Errorf("key %q has a quote inside; quote the whole key", key)
			}
			i += j
		}
		keys = append(keys, key)
		if i == len(s) {
			return keys, nil
		}
		i++ // the dot
		if i == len(s) {
			return nil, errors.New("path ends with a dot")
		}
	}
}
