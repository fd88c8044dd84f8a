package profile

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

func TestMergeValues(t *testing.T) {
	tests := []struct {
		name           string
		base, override string
		want           string
		wantErr        string
	}{
		{name: "both empty", want: ""},
		{name: "empty override is canonical base", base: "b: 1\na: {d: 2, c: 3}\n", want: "a:\n  c: 3\n  d: 2\nb: 1\n"},
		{name: "empty base", override: "a: 1", want: "a: 1\n"},
		{
			name:     "nested maps merge key by key",
			base:     "cluster:\n  config:\n    a: 1\n    b: 2\n  other: x\n",
			override: "cluster:\n  config:\n    b: 3\n    c: 4\n",
			want:     "cluster:\n  config:\n    a: 1\n    b: 3\n    c: 4\n  other: x\n",
		},
		{
			name:     "lists are replaced, not appended",
			base:     "disable: [traefik, servicelb]\n",
			override: "disable: [metrics-server]\n",
			want:     "disable:\n  - metrics-server\n",
		},
		{
			name:     "null deletes a key",
			base:     "a: 1\nb:\n  c: 2\n  d: 3\n",
			override: "b:\n  c: null\na: ~\n",
			want:     "b:\n  d: 3\n",
		},
		{name: "null of a missing key is nothing", base: "a: 1", override: "b:\n  c: null\n", want: "a: 1\nb: {}\n"},
		{name: "scalar becomes a map", base: "a: 1\n", override: "a:\n  b: 2\n", want: "a:\n  b: 2\n"},
		{name: "map becomes a scalar", base: "a:\n  b: 2\n", override: "a: off\n", want: "a: \"off\"\n"},
		{name: "map becomes a list", base: "a:\n  b: 2\n", override: "a: [1]\n", want: "a:\n  - 1\n"},
		{name: "nulls inside a new map are dropped", base: "a: 1", override: "a:\n  b: null\n  c: 1\n", want: "a:\n  c: 1\n"},
		{name: "nulls inside a list stay", override: "a: [null, 1]", want: "a:\n  - null\n  - 1\n"},
		{
			name: "scalars keep their spelling",
			base: "version: 1.30\nmode: \"0644\"\nhex: 0x1F\nquoted: '1.30'\nyes: True\n",
			want: "hex: 0x1F\nmode: \"0644\"\nquoted: \"1.30\"\nversion: 1.30\n\"yes\": true\n",
		},
		{name: "keys are strings", base: "1: a\ntrue: b\n", want: "\"1\": a\n\"true\": b\n"},
		{name: "comments and styles go", base: "# c\na: {b: [1, 2]} # x\n", want: "a:\n  b:\n    - 1\n    - 2\n"},
		{name: "aliases and merge keys are expanded", base: "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", override: "base: {x: 9}", want: "base:\n  x: 9\n  \"y\": 2\nd:\n  x: 1\n  \"y\": 3\n"},
		{name: "YAML 1.1 booleans and base-60 stay strings", base: "a: off\nb: \"yes\"\nn: 1:20\nc: 'on'\n", want: "a: \"off\"\nb: \"yes\"\nc: \"on\"\n\"n\": \"1:20\"\n"},
		{name: "a list of merge keys, earlier wins", base: "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n", want: "a:\n  x: 1\nb:\n  x: 2\n  \"y\": 2\nc:\n  x: 1\n  \"y\": 2\n"},
		{name: "merge keys take mappings only", base: "a:\n  <<: [1]\n", wantErr: "merge key (<<) takes mappings only"},
		{name: "templates in strings survive", override: "a: \"{{ .Vars.x }}\"", want: "a: '{{ .Vars.x }}'\n"},
		{name: "bad base", base: "a: [", wantErr: "base values"},
		{name: "bad override", override: "a: b: c", wantErr: "override values"},
		{name: "a list is not values", base: "- a\n", wantErr: "must be a mapping, not a list"},
		{name: "a scalar is not values", override: "hello", wantErr: "must be a mapping, not a scalar"},
		{name: "two documents", base: "a: 1\n---\nb: 2\n", wantErr: "single YAML document"},
		{name: "duplicate keys", base: "a: 1\na: 2\n", wantErr: `key "a" is given twice (line 2)`},
		{name: "errors quote keys with dots", base: "nodeSelector:\n  kubernetes.io/os:\n    a: 1\n    a: 2\n", wantErr: `nodeSelector."kubernetes.io/os": key "a" is given twice (line 4)`},
		{name: "int and string key clash", base: "1: a\n\"1\": b\n", wantErr: `key "1" is given twice`},
		{name: "alias cycle", base: "a: &x\n  b: *x\n", wantErr: "refers to itself"},
		{name: "map as a key", base: "? {a: 1}\n: b\n", wantErr: "keys must be scalars"},
		{name: "merge key of a scalar", base: "a:\n  <<: 1\n", wantErr: "merge key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeValues(tt.base, tt.override)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want …%s…", err, tt.wantErr)
				}
				if !errors.Is(err, errs.ErrInvalid) {
					t.Errorf("err %v is not errs.ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			// The output is canonical: merging it again changes nothing.
			again, err := CanonicalValues(got)
			if err != nil || again != got {
				t.Errorf("output is not canonical: %q → %q, %v", got, again, err)
			}
		})
	}
}

func TestMergeValuesBillionLaughs(t *testing.T) {
	doc := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
		doc += n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = n
	}
	if _, err := MergeValues(doc, ""); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("err = %v, want a size error", err)
	}
}

func TestParseKeyPath(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "a", want: []string{"a"}},
		{in: "a.b.c", want: []string{"a", "b", "c"}},
		{in: `nodeSelector."kubernetes.io/os"`, want: []string{"nodeSelector", "kubernetes.io/os"}},
		{in: `"a.b"`, want: []string{"a.b"}},
		{in: `"a.b".c`, want: []string{"a.b", "c"}},
		{in: `a."say \"hi\"".b`, want: []string{"a", `say "hi"`, "b"}},
		{in: `a."back\\slash"`, want: []string{"a", `back\slash`}},
		{in: `a.""`, want: []string{"a", ""}},
		{in: "", wantErr: "empty key path"},
		{in: "a..b", wantErr: "empty key"},
		{in: ".a", wantErr: "empty key"},
		{in: "a.", wantErr: "ends with a dot"},
		{in: `a."b`, wantErr: "unterminated quote"},
		{in: `a."b"c`, wantErr: "followed by a dot"},
		{in: `a.b"c"`, wantErr: "quote inside"},
	}
	for _, tt := range tests {
		got, err := ParseKeyPath(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseKeyPath(%q) err = %v, want …%s…", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseKeyPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestApplyPresets(t *testing.T) {
	presets := []v1.Preset{
		{Name: "external-cni", Group: "network", Add: "config:\n  flannel-backend: none\n  disable: [metrics-server]\n"},
		{Name: "wireguard", Group: "network", Add: "config:\n  flannel-backend: wireguard-native\n"},
		{Name: "no-selector", Remove: []string{`nodeSelector."kubernetes.io/os"`, "config.missing.deep", "tolerations"}},
		{Name: "drop-config", Remove: []string{"config"}},
		{Name: "bad-path", Remove: []string{"a..b"}},
		{Name: "bad-add", Add: "a: ["},
		{Name: "replace-config", Remove: []string{"config"}, Add: "config:\n  fresh: true\n"},
	}
	base := "config:\n  flannel-backend: vxlan\n  token: x\nnodeSelector:\n  kubernetes.io/os: linux\n  disk: ssd\ntolerations: [a]\n"
	tests := []struct {
		name    string
		chosen  []string
		want    string
		wantErr string
	}{
		{name: "none", want: "config:\n  flannel-backend: vxlan\n  token: x\nnodeSelector:\n  disk: ssd\n  kubernetes.io/os: linux\ntolerations:\n  - a\n"},
		{
			name: "add merges", chosen: []string{"external-cni"},
			want: "config:\n  disable:\n    - metrics-server\n  flannel-backend: none\n  token: x\nnodeSelector:\n  disk: ssd\n  kubernetes.io/os: linux\ntolerations:\n  - a\n",
		},
		{
			name: "remove with a quoted key, missing paths are fine", chosen: []string{"no-selector"},
			want: "config:\n  flannel-backend: vxlan\n  token: x\nnodeSelector:\n  disk: ssd\n",
		},
		{name: "remove then add", chosen: []string{"replace-config", "no-selector"}, want: "config:\n  fresh: true\nnodeSelector:\n  disk: ssd\n"},
		{name: "order matters", chosen: []string{"external-cni", "drop-config"}, want: "nodeSelector:\n  disk: ssd\n  kubernetes.io/os: linux\ntolerations:\n  - a\n"},
		{name: "unknown", chosen: []string{"turbo"}, wantErr: `preset "turbo": the pack has no such preset`},
		{name: "group clash", chosen: []string{"external-cni", "no-selector", "wireguard"}, wantErr: `presets "external-cni" and "wireguard" are both in group "network"`},
		{name: "twice", chosen: []string{"no-selector", "no-selector"}, wantErr: `preset "no-selector" is chosen twice`},
		{name: "bad remove path", chosen: []string{"bad-path"}, wantErr: `preset "bad-path": remove "a..b": empty key`},
		{name: "bad add", chosen: []string{"bad-add"}, wantErr: `preset "bad-add": add:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ApplyPresets(base, presets, tt.chosen)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want …%s…", err, tt.wantErr)
				}
				if !errors.Is(err, errs.ErrInvalid) {
					t.Errorf("err %v is not errs.ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func FuzzMergeValues(f *testing.F) {
	seeds := [][2]string{
		{"", ""},
		{k3sDefaults, "cluster:\n  config:\n    flannel-backend: none\n"},
		{"a: 1\nb: [1, 2]\n", "b: null\nc: {d: e}\n"},
		{"a: {b: 1}", "a: 2"},
		{"a: 2", "a: {b: 1}"},
		{"x: &a {y: 1}\nz: *a\n", "z: {y: 2}"},
		{"'a.b': \"1.30\"\n", "\"\": ~"},
		{"a: |\n  multi\n  line\n", "b: !custom v"},
		{"<<: {a: 1}\nb: 2\n", "k: [a, {b: c}]"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, base, override string) {
		got, err := MergeValues(base, override)
		canon, cerr := CanonicalValues(base)
		if cerr == nil {
			// merge(x, "") is canonical(x), and canonical is a fixed point.
			if m, err := MergeValues(base, ""); err != nil || m != canon {
				t.Fatalf("MergeValues(x, \"\") = %q, %v; CanonicalValues(x) = %q", m, err, canon)
			}
			if again, err := CanonicalValues(canon); err != nil || again != canon {
				t.Fatalf("canonical form is not stable: %q → %q, %v", canon, again, err)
			}
		}
		if err != nil {
			return
		}
		o, err := parseValues(override)
		if err != nil {
			t.Fatalf("merge succeeded but the override does not parse: %v", err)
		}
		res, err := parseValues(got)
		if err != nil {
			t.Fatalf("the result does not parse: %v\n%s", err, got)
		}
		checkLeaves(t, o, res, nil)
	})
}

// checkLeaves asserts that every non-null leaf of override is in result,
// with the same value.
func checkLeaves(t *testing.T, override, result *vnode, path []string) {
	t.Helper()
	for k, v := range override.m {
		if v.isNull() {
			continue
		}
		p := append(slices.Clip(path), k)
		r, ok := result.m[k]
		if !ok {
			t.Fatalf("key %s of the override is missing from the result", pathText(p))
		}
		if v.isMap() {
			if !r.isMap() {
				t.Fatalf("key %s: the override has a mapping, the result %s", pathText(p), kindName(r))
			}
			checkLeaves(t, v, r, p)
			continue
		}
		if !sameTree(v, r) {
			t.Fatalf("key %s: the override has %v, the result %v", pathText(p), toNode(v), toNode(r))
		}
	}
}

func sameTree(a, b *vnode) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case yaml.ScalarNode:
		return a.tag == b.tag && a.value == b.value
	case yaml.SequenceNode:
		return slices.EqualFunc(a.items, b.items, sameTree)
	}
	if len(a.m) != len(b.m) {
		return false
	}
	for k, v := range a.m {
		if w, ok := b.m[k]; !ok || !sameTree(v, w) {
			return false
		}
	}
	return true
}
