package helm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsyaml "sigs.k8s.io/yaml"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// Release labels. Helm stores a release's labels on its storage Secret, so
// they can be selected on; values must be valid label values (63 bytes).
const (
	// LabelManagedBy marks releases this package made, the only ones it
	// upgrades or uninstalls.
	LabelManagedBy = "outpost.dev/managed-by"
	// LabelConfigHash holds the release's ConfigHash (its first 40 hex
	// digits, which is what fits a label value with room to spare).
	LabelConfigHash = "outpost.dev/config-hash"
	managedBy       = "outpost"
	hashLabelLen    = 40
)

// PrivateValuesKey is the values key that carries settings for Outpost
// rather than for the chart; it is removed before the chart sees the
// values.
const PrivateValuesKey = "outpost"

// NamespacePrefix starts the namespace of a layer whose values name none.
const NamespacePrefix = "outpost-"

// target is what a layer asks of Helm.
type target struct {
	layer     string // the layer's key, for messages
	release   string
	namespace string
	chart     v1.ChartRef
	// values are the chart's values, private key removed.
	values map[string]any
	hash   string
}

// ReleaseName is the Helm release of a layer: its key, with the "#n" of a
// second layer of the same name written "-n" (Helm names are DNS labels).
func ReleaseName(key string) string {
	return strings.ReplaceAll(key, "#", "-")
}

// Namespace is the namespace a layer's release goes to: values
// `outpost.namespace`, else values `namespace` if it is a string, else
// "outpost-" and the release name. It fails on values that are not a YAML
// mapping and on a namespace that is not a DNS label.
func Namespace(key, values string) (string, error) {
	vals, err := parseValues(values)
	if err != nil {
		return "", err
	}
	return namespaceOf(ReleaseName(key), vals)
}

func namespaceOf(release string, vals map[string]any) (string, error) {
	ns := NamespacePrefix + release
	where := ""
	if p, ok := vals[PrivateValuesKey].(map[string]any); ok {
		if s, ok := p["namespace"].(string); ok && s != "" {
			ns, where = s, PrivateValuesKey+".namespace"
		}
	}
	if where == "" {
		if s, ok := vals["namespace"].(string); ok && s != "" {
			ns, where = s, "namespace"
		}
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		if where == "" {
			return "", fmt.Errorf("derived namespace %q: %s", ns, strings.Join(errs, "; "))
		}
		return "", fmt.Errorf("values %s %q: %s", where, ns, strings.Join(errs, "; "))
	}
	return ns, nil
}

// parseValues reads a layer's values the way Helm reads a values file.
func parseValues(values string) (map[string]any, error) {
	if strings.TrimSpace(values) == "" {
		return map[string]any{}, nil
	}
	var vals map[string]any
	if err := sigsyaml.Unmarshal([]byte(values), &vals); err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	if vals == nil {
		// A document of comments only.
		vals = map[string]any{}
	}
	return vals, nil
}

// ConfigHash is the hex sha256 of what Helm is given for a layer: release
// name, namespace, chart reference and values (parsed, so formatting does
// not count). Two layers with the same ConfigHash give the same release.
func ConfigHash(a engine.LayerAction) (string, error) {
	t, err := targetOf(a)
	if err != nil {
		return "", err
	}
	return t.hash, nil
}

// targetOf works out the release of a layer. Its errors are the layer's
// fault (retrying cannot fix them) and are marked Permanent by callers.
func targetOf(a engine.LayerAction) (*target, error) {
	key := a.Key
	if key == "" {
		key = a.Layer.Name
	}
	l := a.Layer
	t := &target{layer: key, release: ReleaseName(key)}
	if err := chartutil.ValidateReleaseName(t.release); err != nil {
		return nil, fmt.Errorf("release name %q: %w", t.release, err)
	}
	if l.Chart == nil || l.Chart.Name == "" || l.Chart.Version == "" {
		return nil, errors.New("layer has no chart (name and version)")
	}
	t.chart = *l.Chart
	t.chart.Digest = normDigest(t.chart.Digest)
	vals, err := parseValues(l.Values)
	if err != nil {
		return nil, err
	}
	if t.namespace, err = namespaceOf(t.release, vals); err != nil {
		return nil, err
	}
	if _, ok := vals[PrivateValuesKey]; ok {
		delete(vals, PrivateValuesKey)
	}
	t.values = vals
	// encoding/json sorts map keys, which makes this canonical; numbers
	// come out the same whether YAML read them as ints or floats.
	doc := struct {
		Release   string         `json:"release"`
		Namespace string         `json:"namespace"`
		Chart     v1.ChartRef    `json:"chart"`
		Values    map[string]any `json:"values"`
	}{t.release, t.namespace, t.chart, vals}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	sum := sha256.Sum256(b)
	t.hash = hex.EncodeToString(sum[:])
	return t, nil
}

// hashLabel is the part of a ConfigHash kept in the release's labels.
func hashLabel(hash string) string {
	if len(hash) > hashLabelLen {
		return hash[:hashLabelLen]
	}
	return hash
}

func (t *target) labels() map[string]string {
	return map[string]string{LabelManagedBy: managedBy, LabelConfigHash: hashLabel(t.hash)}
}

// sameVersion compares chart versions the way packs write them: Helm keeps
// a chart's "v" (Calico's v3.30.0), packs may drop it.
func sameVersion(a, b string) bool {
	return strings.TrimPrefix(a, "v") == strings.TrimPrefix(b, "v")
}

func normDigest(d string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "sha256:"))
}
