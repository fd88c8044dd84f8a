package catalog

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// BuiltinRegistry is the name of the registry that serves the built-in
// catalog, and what every built-in pack file says in its registry field.
const BuiltinRegistry = v1.RegistryBuiltin

// Presets with a meaning beyond their pack: the renderer switches them on
// by itself.
const (
	// PresetExternalCNI, on a k8s pack, turns off what the distro would run
	// in a CNI layer's place (k3s: flannel, its network policy controller
	// and metrics-server; rke2: canal). The renderer switches it on when the
	// profile has a CNI layer, unless the person chose another preset of its
	// group.
	PresetExternalCNI = "external-cni"
	// PresetExternalCSI, on a k8s pack, turns off the distro's own storage
	// (k3s: its local-path provisioner, whose StorageClass "local-path"
	// would clash with the local-path pack's). It is meant to be switched on
	// the same way when the profile has a CSI layer.
	PresetExternalCSI = "external-csi"
)

// KindPackIndex is the kind of a pack index document.
const KindPackIndex = "PackIndex"

// PackIndex is the document a pack-index registry serves as index.yaml:
//
//	apiVersion: outpost.dev/v1
//	kind: PackIndex
//	packs:
//	  - name: my-agent
//	    layer: addon
//	    type: helm
//	    versions: [...]
//
// Each entry is a v1.PackSpec; its registry field is ignored (the packs
// belong to whichever registry serves the index).
type PackIndex struct {
	v1.TypeMeta `json:",inline" yaml:",inline"`
	Packs       []v1.PackSpec `json:"packs" yaml:"packs"`
}

// sourced is a pack spec and where it came from, for error messages.
type sourced struct {
	spec   v1.PackSpec
	source string
}

// Builtin returns the built-in catalog: every pack embedded in the binary,
// validated, named "builtin/<pack>", sorted by name, versions newest first.
// Each call returns a fresh copy that the caller may change.
func Builtin() ([]v1.Pack, error) {
	sub, err := fs.Sub(builtinFS, "builtin")
	if err != nil {
		return nil, fmt.Errorf("built-in catalog: %w", err)
	}
	return loadBuiltin(sub)
}

func loadBuiltin(fsys fs.FS) ([]v1.Pack, error) {
	in, err := readPackFiles(fsys)
	if err != nil {
		return nil, fmt.Errorf("built-in catalog: %w", err)
	}
	for _, s := range in {
		// A pack file says where it belongs; for the built-in ones a
		// mismatch means it was copied from somewhere and not reviewed.
		if s.spec.Registry != BuiltinRegistry {
			return nil, fmt.Errorf("built-in catalog: %s: registry is %q, not %q", s.source, s.spec.Registry, BuiltinRegistry)
		}
	}
	packs, err := makePacks(BuiltinRegistry, in)
	if err != nil {
		return nil, fmt.Errorf("built-in catalog: %w", err)
	}
	return packs, nil
}

// ParsePackFile reads one pack file: a single YAML document shaped like a
// v1.PackSpec. Unknown fields are errors, because pack files are written by
// hand and a misspelt key would otherwise be silently dropped. The pack is
// not validated (see ValidatePack).
func ParsePackFile(data []byte) (*v1.PackSpec, error) {
	var p v1.PackSpec
	if err := decodeOne(data, &p, true); err != nil {
		return nil, err
	}
	return &p, nil
}

// ParsePackIndex reads a pack index. Unknown fields are ignored, so that an
// index written for a newer Outpost still loads. The packs are not
// validated (see ValidatePack).
func ParsePackIndex(data []byte) (*PackIndex, error) {
	var idx PackIndex
	if err := decodeOne(data, &idx, false); err != nil {
		return nil, err
	}
	if idx.APIVersion != v1.APIVersion {
		return nil, fmt.Errorf("apiVersion is %q, want %s", idx.APIVersion, v1.APIVersion)
	}
	if idx.Kind != KindPackIndex {
		return nil, fmt.Errorf("kind is %q, want %s", idx.Kind, KindPackIndex)
	}
	return &idx, nil
}

// decodeOne decodes a YAML stream that must hold exactly one document.
func decodeOne(data []byte, out any, strict bool) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(strict)
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the document is empty")
		}
		return err
	}
	var extra yaml.Node
	err := dec.Decode(&extra)
	if errors.Is(err, io.EOF) || (err == nil && isNullDoc(&extra)) {
		return nil
	}
	return errors.New("a file holds exactly one YAML document")
}

func isNullDoc(n *yaml.Node) bool {
	return len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].ShortTag() == "!!null")
}

// readPackFiles reads every *.yaml and *.yml file at the top of fsys as a
// pack file. Hidden files are skipped: editors leave them behind.
func readPackFiles(fsys fs.FS) ([]sourced, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var out []sourced
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		data, err := readLimited(fsys, name)
		if err != nil {
			return nil, err
		}
		p, err := ParsePackFile(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, sourced{spec: *p, source: name})
	}
	return out, nil
}

// readLimited reads a file of at most maxIndexBytes.
func readLimited(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIndexBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(data)) > maxIndexBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxIndexBytes>>20)
	}
	return data, nil
}

// makePacks turns specs into the Pack objects of registry: validated,
// registry set, named "<registry>/<pack>", sorted by name, versions newest
// first (so that equal catalogs are equal byte for byte and hash alike).
// Every invalid pack is reported, each with its field errors.
func makePacks(registry string, in []sourced) ([]v1.Pack, error) {
	var problems []error
	where := map[string]string{}
	out := make([]v1.Pack, 0, len(in))
	for _, s := range in {
		spec := s.spec
		spec.Registry = registry
		if err := ValidatePack(&spec); err != nil {
			problems = append(problems, fmt.Errorf("%s: pack %q: %w", s.source, spec.Name, err))
			continue
		}
		if prev, dup := where[spec.Name]; dup {
			problems = append(problems, fmt.Errorf("%s: pack %q is already defined by %s", s.source, spec.Name, prev))
			continue
		}
		where[spec.Name] = s.source
		sortPackVersions(&spec)
		out = append(out, v1.Pack{
			TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindPack},
			Metadata: v1.ObjectMeta{Name: registry + "/" + spec.Name},
			Spec:     spec,
		})
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	slices.SortFunc(out, func(a, b v1.Pack) int { return cmp.Compare(a.Metadata.Name, b.Metadata.Name) })
	return out, nil
}

// sortPackVersions orders a validated pack's versions newest first.
func sortPackVersions(p *v1.PackSpec) {
	slices.SortStableFunc(p.Versions, func(a, b v1.PackVersion) int {
		switch {
		case Newer(a.Version, b.Version):
			return -1
		case Newer(b.Version, a.Version):
			return 1
		}
		return 0
	})
}
