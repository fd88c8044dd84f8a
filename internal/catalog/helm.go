package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	sigsyaml "sigs.k8s.io/yaml"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// helmIndex is the part of a Helm chart repository's index.yaml that packs
// are made of. Other fields (created, icon, maintainers, …) are ignored.
type helmIndex struct {
	APIVersion string                        `json:"apiVersion"`
	Entries    map[string][]helmChartVersion `json:"entries"`
}

type helmChartVersion struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	AppVersion  string   `json:"appVersion"`
	Description string   `json:"description"`
	Type        string   `json:"type"`
	KubeVersion string   `json:"kubeVersion"`
	URLs        []string `json:"urls"`
	Digest      string   `json:"digest"`
	Deprecated  bool     `json:"deprecated"`
}

func fetchHelm(ctx context.Context, name string, spec v1.RegistrySpec, client *http.Client) ([]v1.Pack, error) {
	if spec.Directory != "" {
		return nil, fmt.Errorf("registry %q: a Helm repository is read from its url, not a directory: %w", name, errs.ErrInvalid)
	}
	if spec.URL == "" {
		return nil, fmt.Errorf("registry %q: a Helm repository needs a url: %w", name, errs.ErrInvalid)
	}
	if strings.HasPrefix(spec.URL, "oci://") {
		return nil, fmt.Errorf("registry %q: %s is an OCI registry, which has no index to list charts from; list its charts as helm packs in a pack index instead: %w", name, spec.URL, errs.ErrInvalid)
	}
	repo, err := parseHTTPURL(spec.URL)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", name, err)
	}
	// Like `helm repo add`, the URL names the repository; accept the
	// index's own URL too, since that is what people copy.
	repo.Path = strings.TrimSuffix(strings.TrimSuffix(repo.Path, "/index.yaml"), "/")
	repo.RawPath = ""
	indexURL := repo.JoinPath("index.yaml")
	data, err := download(ctx, client, spec.CACert, name, indexURL)
	if err != nil {
		return nil, err
	}
	idx, err := parseHelmIndex(data)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %s: not a Helm repository index: %w", name, indexURL.Redacted(), err)
	}
	// The repository URL is copied into every pack, which every project
	// can read: it must not carry the registry's credentials.
	public := *repo
	public.User = nil
	packs, err := makePacks(name, helmPacks(public.String(), &public, idx))
	if err != nil {
		return nil, fmt.Errorf("registry %q: %s: %w", name, indexURL.Redacted(), err)
	}
	return packs, nil
}

func parseHelmIndex(data []byte) (*helmIndex, error) {
	var idx helmIndex
	// sigs.k8s.io/yaml is what Helm reads indexes with, so quirks (JSON
	// indexes, odd quoting) are read the same way.
	if err := sigsyaml.Unmarshal(data, &idx); err != nil {
		return nil, err
	}
	switch idx.APIVersion {
	case "v1":
		return &idx, nil
	case "":
		return nil, errors.New("it has no apiVersion")
	}
	return nil, fmt.Errorf("apiVersion is %q, want v1", idx.APIVersion)
}

// helmPacks makes one addon pack per chart. Entries Helm itself would not
// install are left out rather than failing the registry, since one odd
// chart must not hide the others: library charts, versions that are not
// MAJOR.MINOR.PATCH, a second entry for one version, entries without a
// download URL, and kubeVersion ranges that do not parse. The description
// is the newest version's.
func helmPacks(repository string, base *url.URL, idx *helmIndex) []sourced {
	charts := make([]string, 0, len(idx.Entries))
	for c := range idx.Entries {
		charts = append(charts, c)
	}
	slices.Sort(charts)
	var out []sourced
	for _, chart := range charts {
		if !rePackName.MatchString(chart) {
			continue
		}
		spec := v1.PackSpec{Name: chart, Layer: v1.LayerAddon, Type: v1.PackHelm}
		seen := map[string]bool{}
		var newest *semver.Version
		for _, cv := range idx.Entries[chart] {
			pv, v, ok := helmVersion(repository, base, chart, cv)
			if !ok || seen[v.String()] {
				continue
			}
			seen[v.String()] = true
			spec.Versions = append(spec.Versions, pv)
			if newest == nil || compareVersions(v, newest) > 0 {
				newest, spec.Description = v, cv.Description
			}
		}
		if len(spec.Versions) > 0 {
			out = append(out, sourced{spec: spec, source: "chart " + chart})
		}
	}
	return out
}

func helmVersion(repository string, base *url.URL, chart string, cv helmChartVersion) (v1.PackVersion, *semver.Version, bool) {
	if cv.Type == "library" || len(cv.URLs) == 0 {
		return v1.PackVersion{}, nil, false
	}
	v, err := parseVersion(cv.Version)
	if err != nil {
		return v1.PackVersion{}, nil, false
	}
	pv := v1.PackVersion{
		// The pack version drops Helm's optional v (Calico's v3.28.2) so
		// that packs read alike; the chart ref keeps what Helm needs.
		Version:    strings.TrimPrefix(cv.Version, "v"),
		Deprecated: cv.Deprecated,
		Chart:      &v1.ChartRef{Repository: repository, Name: chart, Version: cv.Version},
	}
	if kv := strings.TrimSpace(cv.KubeVersion); kv != "" {
		if _, err := semver.NewConstraint(kv); err != nil {
			return v1.PackVersion{}, nil, false
		}
		pv.Constraints = &v1.Constraints{Kubernetes: kv}
	}
	chartURL, err := resolveChartURL(base, cv.URLs[0])
	if err != nil {
		return v1.PackVersion{}, nil, false
	}
	if d := strings.ToLower(strings.TrimPrefix(cv.Digest, "sha256:")); reSHA256.MatchString(d) {
		pv.Chart.Digest = d
		// ChartRef has no URL field; the archive is recorded as an
		// architecture-independent artifact so that its resolved URL and
		// digest travel with the pack (air-gapped bundles need both).
		if chartURL.Scheme == "http" || chartURL.Scheme == "https" {
			file := path.Base(chartURL.Path)
			if file == "." || file == "/" || file == "" {
				file = chart + "-" + cv.Version + ".tgz"
			}
			pv.Artifacts = []v1.Artifact{{Name: file, URL: chartURL.String(), SHA256: d}}
		}
	}
	return pv, v, true
}

// resolveChartURL resolves a chart URL from an index against the repository
// URL the way Helm does: the repository is a directory (trailing slash
// added), and its query string — a signed URL's token — is kept unless the
// reference has its own. Any credentials are dropped.
func resolveChartURL(base *url.URL, ref string) (*url.URL, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return nil, err
	}
	if !r.IsAbs() {
		b := *base
		b.Path = strings.TrimSuffix(b.Path, "/") + "/"
		b.RawPath = ""
		q := r.RawQuery
		r = b.ResolveReference(r)
		if q == "" {
			r.RawQuery = base.RawQuery
		}
	}
	r.User = nil
	return r, nil
}
