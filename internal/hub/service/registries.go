package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/catalog"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// BuiltinRegistry is the registry of the embedded catalog.
const BuiltinRegistry = "builtin"

const defaultSyncInterval = time.Hour

// EnsureBuiltinRegistry creates the built-in registry on first start and
// syncs it, so the embedded catalog of this build is always in the store.
func (s *Service) EnsureBuiltinRegistry(ctx context.Context) error {
	if _, err := s.store.Get(ctx, v1.KindRegistry, "", BuiltinRegistry); errors.Is(err, errs.ErrNotFound) {
		r := &v1.Registry{
			TypeMeta: typeMeta(v1.KindRegistry),
			Metadata: v1.ObjectMeta{Name: BuiltinRegistry},
			Spec:     v1.RegistrySpec{Type: v1.RegistryBuiltin, SyncInterval: "0"},
		}
		op, err := objects.CreateOp(v1.KindRegistry, r, "")
		if err != nil {
			return err
		}
		if _, err := s.write(ctx, op); err != nil && !errors.Is(err, errs.ErrAlreadyExists) {
			return fmt.Errorf("create registry %q: %w", BuiltinRegistry, err)
		}
	} else if err != nil {
		return err
	}
	_, err := s.syncRegistry(ctx, BuiltinRegistry)
	return err
}

func validateRegistry(fl *errs.FieldList, r *v1.Registry) {
	validName(fl, "metadata.name", r.Metadata.Name)
	validLabels(fl, "metadata.labels", r.Metadata.Labels)
	switch r.Spec.Type {
	case v1.RegistryPackIndex:
		if (r.Spec.URL == "") == (r.Spec.Directory == "") {
			fl.Add("spec.url", "a pack index needs exactly one of url and directory")
		}
	case v1.RegistryHelm:
		if r.Spec.URL == "" {
			fl.Add("spec.url", "a Helm repository needs its url")
		}
		if r.Spec.Directory != "" {
			fl.Add("spec.directory", "a Helm repository is read over HTTP(S); use url")
		}
	case v1.RegistryBuiltin:
		fl.Add("spec.type", "there is one built-in registry and it is made by the hub")
	default:
		fl.Add("spec.type", "%q is not one of pack-index, helm", r.Spec.Type)
	}
	if r.Spec.URL != "" {
		u, err := url.Parse(r.Spec.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			fl.Add("spec.url", "%q is not an http(s) URL", r.Spec.URL)
		}
	}
	if r.Spec.SyncInterval != "" && r.Spec.SyncInterval != "0" {
		if d, err := time.ParseDuration(r.Spec.SyncInterval); err != nil || d < time.Minute {
			fl.Add("spec.syncInterval", "%q is not a duration of at least 1m (or 0 for no schedule)", r.Spec.SyncInterval)
		}
	}
}

// ListRegistries lists every registry (readable by any caller: packs are
// hub-wide).
func (s *Service) ListRegistries(ctx context.Context, p *auth.Principal) (v1.List[v1.Registry], error) {
	all, rev, err := objects.List[v1.Registry](ctx, s.store, v1.KindRegistry, "")
	if err != nil {
		return v1.List[v1.Registry]{}, err
	}
	out := v1.List[v1.Registry]{Items: make([]v1.Registry, 0, len(all)), Revision: rev}
	for _, r := range all {
		out.Items = append(out.Items, *redactRegistry(p, r))
	}
	return out, nil
}

// redactRegistry hides the password of a registry URL from everyone but hub
// admins: registries are readable hub-wide, their credentials are not.
func redactRegistry(p *auth.Principal, r *v1.Registry) *v1.Registry {
	if p.IsHubAdmin() || r.Spec.URL == "" {
		return r
	}
	u, err := url.Parse(r.Spec.URL)
	if err != nil || u.User == nil {
		return r
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
		r.Spec.URL = u.String()
	}
	return r
}

// GetRegistry reads one registry.
func (s *Service) GetRegistry(ctx context.Context, p *auth.Principal, name string) (*v1.Registry, error) {
	r, err := objects.Get[v1.Registry](ctx, s.store, v1.KindRegistry, "", name)
	if err != nil {
		return nil, fmt.Errorf("get registry %q: %w", name, err)
	}
	return redactRegistry(p, r), nil
}

// CreateRegistry adds a registry (hub admins only) and syncs it at once; a
// failing first sync leaves the registry with its error in status.
func (s *Service) CreateRegistry(ctx context.Context, p *auth.Principal, in *v1.Registry) (*v1.Registry, error) {
	if !p.IsHubAdmin() {
		return nil, fmt.Errorf("only hub admins add registries: %w", errs.ErrForbidden)
	}
	var fl errs.FieldList
	validateRegistry(&fl, in)
	if err := fl.Err(); err != nil {
		return nil, err
	}
	r := &v1.Registry{TypeMeta: typeMeta(v1.KindRegistry), Metadata: v1.ObjectMeta{Name: in.Metadata.Name, Labels: in.Metadata.Labels}, Spec: in.Spec}
	op, err := objects.CreateOp(v1.KindRegistry, r, "")
	if err != nil {
		return nil, err
	}
	if _, err := s.write(ctx, op); err != nil {
		return nil, fmt.Errorf("create registry %q: %w", r.Metadata.Name, err)
	}
	return s.syncRegistry(ctx, r.Metadata.Name)
}

// UpdateRegistry changes a registry's spec and syncs it.
func (s *Service) UpdateRegistry(ctx context.Context, p *auth.Principal, name string, in *v1.Registry) (*v1.Registry, error) {
	if !p.IsHubAdmin() {
		return nil, fmt.Errorf("only hub admins change registries: %w", errs.ErrForbidden)
	}
	in.Metadata.Name = name
	var fl errs.FieldList
	validateRegistry(&fl, in)
	if in.Metadata.Revision == 0 {
		fl.Add("metadata.revision", "required: the revision you read")
	}
	if err := fl.Err(); err != nil {
		return nil, err
	}
	cur, err := objects.Get[v1.Registry](ctx, s.store, v1.KindRegistry, "", name)
	if err != nil {
		return nil, fmt.Errorf("update registry %q: %w", name, err)
	}
	cur.Spec, cur.Metadata.Labels, cur.Metadata.Revision = in.Spec, in.Metadata.Labels, in.Metadata.Revision
	op, err := objects.UpdateOp(v1.KindRegistry, cur, "")
	if err != nil {
		return nil, err
	}
	if _, err := s.write(ctx, op); err != nil {
		return nil, fmt.Errorf("update registry %q: %w", name, err)
	}
	return s.syncRegistry(ctx, name)
}

// DeleteRegistry removes a registry and its packs. Profiles that use them
// fail validation from then on (they say which pack is missing).
func (s *Service) DeleteRegistry(ctx context.Context, p *auth.Principal, name string) error {
	if !p.IsHubAdmin() {
		return fmt.Errorf("only hub admins delete registries: %w", errs.ErrForbidden)
	}
	if name == BuiltinRegistry {
		return errs.Field("metadata.name", "the built-in registry cannot be deleted")
	}
	r, err := s.store.Get(ctx, v1.KindRegistry, "", name)
	if err != nil {
		return fmt.Errorf("delete registry %q: %w", name, err)
	}
	ops := []store.Op{objects.DeleteOp(v1.KindRegistry, "", name, r.Revision)}
	packs, err := s.registryPacks(ctx, name)
	if err != nil {
		return err
	}
	for _, pk := range packs {
		ops = append(ops, objects.DeleteOp(v1.KindPack, "", pk.Metadata.Name, 0))
	}
	if _, err := s.write(ctx, ops...); err != nil {
		return fmt.Errorf("delete registry %q: %w", name, err)
	}
	return nil
}

// SyncRegistry syncs a registry now and returns it with its new status.
func (s *Service) SyncRegistry(ctx context.Context, p *auth.Principal, name string) (*v1.Registry, error) {
	if !p.IsHubAdmin() {
		return nil, fmt.Errorf("only hub admins sync registries: %w", errs.ErrForbidden)
	}
	return s.syncRegistry(ctx, name)
}

func (s *Service) registryPacks(ctx context.Context, registry string) ([]*v1.Pack, error) {
	all, _, err := objects.List[v1.Pack](ctx, s.store, v1.KindPack, "")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(p *v1.Pack) bool { return p.Spec.Registry != registry }), nil
}

// syncRegistry fetches a registry's catalog and makes the stored packs match
// it in one write. A registry that fails keeps its last good packs; its
// status says why and since when. The write expects the revision read before
// the fetch, so a spec changed meanwhile is never overwritten: the sync runs
// again with the new spec.
func (s *Service) syncRegistry(ctx context.Context, name string) (*v1.Registry, error) {
	unlock := s.lock("registry/" + name) // one sync of a registry at a time
	defer unlock()
	for {
		r, err := s.syncRegistryOnce(ctx, name)
		if !errors.Is(err, errs.ErrConflict) {
			return r, err
		}
	}
}

func (s *Service) syncRegistryOnce(ctx context.Context, name string) (*v1.Registry, error) {
	r, err := objects.Get[v1.Registry](ctx, s.store, v1.KindRegistry, "", name)
	if err != nil {
		return nil, fmt.Errorf("sync registry %q: %w", name, err)
	}
	fetched, ferr := catalog.Fetch(ctx, name, r.Spec, s.httpClient())
	now := s.now().UTC()
	if ferr != nil {
		s.log.Warn("registry sync failed; keeping its last good catalog", "registry", name, "err", ferr)
		r.Status.LastError, r.Status.LastErrorAt = ferr.Error(), &now
		op, err := objects.UpdateOp(v1.KindRegistry, r, "")
		if err != nil {
			return nil, err
		}
		rows, err := s.write(ctx, op)
		if err != nil {
			return nil, fmt.Errorf("sync registry %q: %w", name, err)
		}
		return objects.Written[v1.Registry](rows, 0)
	}

	existing, err := s.registryPacks(ctx, name)
	if err != nil {
		return nil, err
	}
	have := map[string]*v1.Pack{}
	for _, p := range existing {
		have[p.Metadata.Name] = p
	}
	var ops []store.Op
	versions := 0
	sum := sha256.New()
	slices.SortFunc(fetched, func(a, b v1.Pack) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	for i := range fetched {
		p := &fetched[i]
		p.TypeMeta = typeMeta(v1.KindPack)
		p.Spec.Registry = name
		p.Metadata = v1.ObjectMeta{Name: name + "/" + p.Spec.Name}
		versions += len(p.Spec.Versions)
		spec, _ := json.Marshal(p.Spec)
		sum.Write(spec)
		old, ok := have[p.Metadata.Name]
		delete(have, p.Metadata.Name)
		if ok {
			oldSpec, _ := json.Marshal(old.Spec)
			if string(oldSpec) == string(spec) {
				continue
			}
			p.Metadata.Revision = old.Metadata.Revision
			op, err := objects.UpdateOp(v1.KindPack, p, "")
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
			continue
		}
		op, err := objects.CreateOp(v1.KindPack, p, "")
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	for gone := range have {
		ops = append(ops, objects.DeleteOp(v1.KindPack, "", gone, 0))
	}
	r.Status = v1.RegistryStatus{LastSync: &now, Packs: len(fetched), Versions: versions, CatalogHash: hex.EncodeToString(sum.Sum(nil))}
	rop, err := objects.UpdateOp(v1.KindRegistry, r, "")
	if err != nil {
		return nil, err
	}
	rows, err := s.write(ctx, append([]store.Op{rop}, ops...)...)
	if err != nil {
		return nil, fmt.Errorf("sync registry %q: %w", name, err)
	}
	if len(ops) > 0 {
		s.log.Info("registry synced", "registry", name, "packs", len(fetched), "versions", versions, "changed", len(ops))
	}
	return objects.Written[v1.Registry](rows, 0)
}

func (s *Service) httpClient() *http.Client {
	s.httpOnce.Do(func() {
		s.http = &http.Client{Timeout: 2 * time.Minute, Transport: http.DefaultTransport}
	})
	return s.http
}

// registryLoop syncs registries whose interval has passed. Registries are
// few; a minute's granularity is plenty for hourly schedules.
func (s *Service) registryLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		regs, _, err := objects.List[v1.Registry](ctx, s.store, v1.KindRegistry, "")
		if err != nil {
			continue
		}
		for _, r := range regs {
			if dueForSync(r, s.now()) {
				if _, err := s.syncRegistry(ctx, r.Metadata.Name); err != nil && ctx.Err() == nil {
					s.log.Warn("scheduled registry sync", "registry", r.Metadata.Name, "err", err)
				}
			}
		}
	}
}

func dueForSync(r *v1.Registry, now time.Time) bool {
	interval := defaultSyncInterval
	if r.Spec.SyncInterval == "0" {
		return false
	}
	if d, err := time.ParseDuration(r.Spec.SyncInterval); err == nil && d > 0 {
		interval = d
	}
	last := r.Status.LastSync
	if r.Status.LastErrorAt != nil && (last == nil || r.Status.LastErrorAt.After(*last)) {
		last = r.Status.LastErrorAt
	}
	return last == nil || now.Sub(*last) >= interval
}
