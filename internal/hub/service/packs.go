package service

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// packIndex knows which registries offer a pack name, so a profile layer
// that names no registry is found without reading every pack.
type packIndex struct {
	mu     sync.RWMutex
	byName map[string]map[string]bool // pack name -> registries
}

func newPackIndex() *packIndex { return &packIndex{byName: map[string]map[string]bool{}} }

func (x *packIndex) load(ctx context.Context, s store.Store) error {
	packs, _, err := objects.List[v1.Pack](ctx, s, v1.KindPack, "")
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, p := range packs {
		x.addLocked(p.Metadata.Name)
	}
	return nil
}

func (x *packIndex) addLocked(full string) {
	reg, name, ok := strings.Cut(full, "/")
	if !ok {
		return
	}
	if x.byName[name] == nil {
		x.byName[name] = map[string]bool{}
	}
	x.byName[name][reg] = true
}

// apply is the watch hook.
func (x *packIndex) apply(c store.Change) {
	if c.Object.Kind != v1.KindPack {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if c.Type == store.Deleted {
		if reg, name, ok := strings.Cut(c.Object.Name, "/"); ok {
			delete(x.byName[name], reg)
			if len(x.byName[name]) == 0 {
				delete(x.byName, name)
			}
		}
		return
	}
	x.addLocked(c.Object.Name)
}

func (x *packIndex) registries(name string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	for r := range x.byName[name] {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// PackFilter selects packs in ListPacks.
type PackFilter struct {
	Registry string
	Layer    string
	Type     string
	// Name matches packs whose name contains it.
	Name string
}

// ListPacks lists packs of every registry (readable by any caller).
func (s *Service) ListPacks(ctx context.Context, p *auth.Principal, f PackFilter) (v1.List[v1.Pack], error) {
	all, rev, err := objects.List[v1.Pack](ctx, s.store, v1.KindPack, "")
	if err != nil {
		return v1.List[v1.Pack]{}, err
	}
	out := v1.List[v1.Pack]{Items: []v1.Pack{}, Revision: rev}
	for _, pk := range all {
		if (f.Registry == "" || pk.Spec.Registry == f.Registry) && (f.Layer == "" || pk.Spec.Layer == f.Layer) &&
			(f.Type == "" || pk.Spec.Type == f.Type) && (f.Name == "" || strings.Contains(pk.Spec.Name, f.Name)) {
			out.Items = append(out.Items, *pk)
		}
	}
	return out, nil
}

// GetPack reads one pack by registry and name; registry "" finds the pack
// in whichever registry has it, and fails when several do.
func (s *Service) GetPack(ctx context.Context, p *auth.Principal, registry, name string) (*v1.Pack, error) {
	return s.lookupPack(ctx, registry, name)
}

func (s *Service) lookupPack(ctx context.Context, registry, name string) (*v1.Pack, error) {
	if registry == "" {
		regs := s.packs.registries(name)
		switch len(regs) {
		case 0:
			return nil, fmt.Errorf("pack %q is in no registry: %w", name, errs.ErrNotFound)
		case 1:
			registry = regs[0]
		default:
			if !slices.Contains(regs, BuiltinRegistry) {
				return nil, fmt.Errorf("pack %q is in registries %s: name one: %w", name, strings.Join(regs, ", "), errs.ErrInvalid)
			}
			// The built-in catalog wins a tie: it is what the profile's
			// author most likely meant, and it is always there.
			registry = BuiltinRegistry
		}
	}
	pk, err := objects.Get[v1.Pack](ctx, s.store, v1.KindPack, "", registry+"/"+name)
	if err != nil {
		return nil, fmt.Errorf("pack %q in registry %q: %w", name, registry, err)
	}
	return pk, nil
}

// storePackLookup adapts the store to the profile package's pack lookup,
// memoizing within one validation or render.
type storePackLookup struct {
	ctx  context.Context
	svc  *Service
	seen map[string]*v1.Pack
}

func (s *Service) packLookup(ctx context.Context) *storePackLookup {
	return &storePackLookup{ctx: ctx, svc: s, seen: map[string]*v1.Pack{}}
}

func (l *storePackLookup) Pack(registry, name string) (*v1.Pack, error) {
	k := registry + "/" + name
	if p, ok := l.seen[k]; ok {
		return p, nil
	}
	p, err := l.svc.lookupPack(l.ctx, registry, name)
	if err != nil {
		return nil, err
	}
	l.seen[k] = p
	return p, nil
}
