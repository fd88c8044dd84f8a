package profile

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

func TestDecodeFullProfile(t *testing.T) {
	p := fullProfile(t)
	if p.Metadata.Name != "store-edge" || p.Metadata.Project != "stores" {
		t.Errorf("metadata = %+v", p.Metadata)
	}
	if p.Spec.Type != v1.ProfileFull || p.Spec.Version != "1.0.0" || len(p.Spec.Layers) != 5 || len(p.Spec.Variables) != 2 {
		t.Fatalf("spec = %+v", p.Spec)
	}
	k3s := p.Spec.Layers[1]
	if k3s.Pack != "k3s" || k3s.Name != "" || k3s.Version != "1.30.x" || !reflect.DeepEqual(k3s.Presets, []string{"secrets-encryption"}) {
		t.Errorf("k3s layer = %+v", k3s)
	}
	if !strings.Contains(k3s.Values, "cluster-cidr: {{ .Vars.podCIDR }}") {
		t.Errorf("k3s values = %q", k3s.Values)
	}
	if v := p.Spec.Variables[1]; v.Name != "siteCode" || !v.Required || v.Regex != "[a-z]{2}-[0-9]{3}" {
		t.Errorf("variable = %+v", v)
	}
	if ms := p.Spec.Layers[4]; ms.Registry != "builtin" || len(ms.Manifests) != 1 || ms.Manifests[0].Name != "site-info" {
		t.Errorf("metrics-server layer = %+v", ms)
	}
}

func TestDecodeErrors(t *testing.T) {
	const head = "apiVersion: outpost.dev/v1\nkind: ClusterProfile\nmetadata:\n  name: p\nspec:\n  type: full\n  version: 1.0.0\n"
	tests := []struct {
		name  string
		doc   string
		field string // "" when the error is not a field error
		msg   string
	}{
		{name: "unknown top-level key", doc: head + "extra: 1\n", field: "extra", msg: "unknown key (line 8)"},
		{name: "unknown spec key", doc: head + "  layer: []\n", field: "spec.layer", msg: "unknown key (line 8)"},
		{
			name:  "unknown layer key names the layer",
			doc:   head + "  layers:\n    - pack: k3s\n      version: 1.30.x\n      valuez: |\n        a: 1\n",
			field: "spec.layers[k3s].valuez", msg: "unknown key (line 11)",
		},
		{
			name:  "unknown key in an unnamed raw layer uses the index",
			doc:   head + "  layers:\n    - manifests:\n        - name: m\n          contnt: x\n",
			field: "spec.layers[0].manifests[m].contnt", msg: "unknown key (line 11)",
		},
		{
			name:  "values must be a string",
			doc:   head + "  layers:\n    - name: os\n      pack: ubuntu\n      values:\n        a: 1\n",
			field: "spec.layers[os].values", msg: "must be a string (a block scalar `|` for YAML text), not a mapping (line 12)",
		},
		{name: "layers must be a list", doc: head + "  layers: x\n", field: "spec.layers", msg: "must be a list"},
		{name: "published must be a bool", doc: head + "  published: sometimes\n", field: "spec.published", msg: "must be true or false, not !!str (line 8)"},
		{name: "variable key", doc: head + "  variables:\n    - name: x\n      typ: string\n", field: "spec.variables[x].typ", msg: "unknown key (line 10)"},
		{name: "wrong apiVersion", doc: strings.Replace(head, "outpost.dev/v1", "v1", 1), field: "apiVersion", msg: `must be outpost.dev/v1, not "v1"`},
		{name: "wrong kind", doc: strings.Replace(head, "ClusterProfile", "Pack", 1), field: "kind", msg: `must be ClusterProfile, not "Pack"`},
		{name: "no kind", doc: strings.Replace(head, "kind: ClusterProfile\n", "", 1), field: "kind", msg: "is required"},
		{name: "syntax error has the line", doc: head + "  layers: [\n", msg: "line 8"},
		{name: "two documents", doc: head + "---\n" + head, msg: "more than one YAML document"},
		{name: "empty", doc: "", msg: "empty"},
		{name: "not a mapping", doc: "- a\n", msg: "must be a mapping (line 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc))
			if tt.field != "" {
				wantFieldError(t, err, tt.field, tt.msg)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want …%s…", err, tt.msg)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("err %v is not errs.ErrInvalid", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(fullProfileYAML))
	f.Add([]byte("apiVersion: outpost.dev/v1\nkind: ClusterProfile\nmetadata: {name: a, labels: {x: y}, createdAt: 2024-05-01T10:00:00+02:00}\nspec: {type: addon, version: 1.0.0, layers: []}\nstatus: {resolved: [{layer: a, version: '1'}]}\n"))
	f.Add([]byte("apiVersion: outpost.dev/v1\nkind: ClusterProfile\nspec:\n  layers:\n    - manifests: [{name: a, content: \"x\"}]\n      presets: []\n"))
	f.Add([]byte("a: [\n"))
	f.Add([]byte("apiVersion: outpost.dev/v1\nkind: ClusterProfile\nmetadata: &m {name: a}\nspec: {description: *m}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data)
		if err != nil {
			return
		}
		out, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("encode a decoded profile: %v", err)
		}
		q, err := Decode(out)
		if err != nil {
			t.Fatalf("decode a re-encoded profile: %v\n%s", err, out)
		}
		if a, b := normalizeForCompare(p), normalizeForCompare(q); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the profile:\n%#v\n%#v\nencoded:\n%s", a, b, out)
		}
	})
}

// normalizeForCompare makes what YAML cannot tell apart equal: an empty and
// a nil list or map (omitempty drops both), and times in other zones.
func normalizeForCompare(p *v1.ClusterProfile) *v1.ClusterProfile {
	c := DeepCopy(p)
	normalizeValue(reflect.ValueOf(c).Elem())
	return c
}

func normalizeValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if t, ok := v.Interface().(time.Time); ok {
			v.Set(reflect.ValueOf(t.UTC()))
			return
		}
		for i := range v.NumField() {
			normalizeValue(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		for i := range v.Len() {
			normalizeValue(v.Index(i))
		}
	case reflect.Map:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			normalizeValue(v.Elem())
		}
	}
}
