package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/catalog"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/profile"
)

// renderedCluster is a cluster's profiles rendered into what its hosts run.
type renderedCluster struct {
	OS     *v1.RenderedLayer
	Distro *v1.RenderedLayer
	// Layers are everything after the distro, in apply order.
	Layers []v1.RenderedLayer
	Status []v1.ClusterLayerStatus
	// Pins are the versions every pack layer resolved to.
	Pins map[string]string
	Hash string
}

func layerHash(l v1.RenderedLayer) string {
	l.Hash = ""
	b, _ := json.Marshal(l)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func pinsValid(c *storedCluster) bool {
	return c.Internal.Pins != nil && slices.Equal(c.Internal.PinnedProfiles, c.Spec.Profiles) && c.Internal.PinnedGeneration == c.Spec.ResolveGeneration
}

// renderCluster renders every profile of the cluster with its variables,
// the versions pinned at creation (unless the user asked for the trains'
// newest), and the cluster's per-layer overrides.
func (s *Service) renderCluster(ctx context.Context, c *storedCluster) (*renderedCluster, error) {
	lookup := s.packLookup(ctx)
	out := &renderedCluster{Pins: map[string]string{}}
	usePins := pinsValid(c)
	usedOverrides := make([]bool, len(c.Spec.Overrides))
	for pi, ref := range c.Spec.Profiles {
		cp, err := s.getProfile(ctx, c.Metadata.Project, ref.Name, ref.Version)
		if err != nil {
			return nil, errs.Field(fmt.Sprintf("spec.profiles[%d]", pi), "profile %s@%s: %v", ref.Name, ref.Version, err)
		}
		asked := map[string]string{}
		for _, l := range cp.Spec.Layers {
			if l.Pack != "" && catalog.IsTrain(l.Version) {
				asked[l.Name] = l.Version
			}
		}
		if usePins {
			for i, l := range cp.Spec.Layers {
				if v, ok := c.Internal.Pins[ref.Name+"/"+l.Name]; ok && l.Pack != "" {
					cp.Spec.Layers[i].Version = v
				}
			}
		}
		vars := map[string]string{}
		for _, d := range cp.Spec.Variables {
			if v, ok := c.Spec.Variables[d.Name]; ok {
				vars[d.Name] = v
			}
		}
		r, err := profile.Render(cp, lookup, profile.RenderOptions{Resolver: catalog.Resolve, Vars: vars})
		if err != nil {
			return nil, reroot(err, "spec.", fmt.Sprintf("cluster %q: profile %s@%s", c.Metadata.Name, ref.Name, ref.Version))
		}
		for _, l := range r.Layers {
			// A pinned layer renders as the exact version; keep the train it
			// follows so its hash is the same as before pinning.
			l.Train = asked[l.Name]
			for oi, ov := range c.Spec.Overrides {
				if ov.Layer != l.Name || ov.Profile != "" && ov.Profile != ref.Name {
					continue
				}
				merged, err := profile.MergeValues(l.Values, ov.Values)
				if err != nil {
					return nil, errs.Field(fmt.Sprintf("spec.overrides[%d].values", oi), "%v", err)
				}
				l.Values = merged
				usedOverrides[oi] = true
			}
			l.Hash = layerHash(l)
			if l.Pack != "" {
				out.Pins[ref.Name+"/"+l.Name] = l.Version
			}
			out.Status = append(out.Status, v1.ClusterLayerStatus{Profile: ref.Name, Layer: l.Name, Pack: l.Pack, Version: l.Version, Hash: l.Hash})
			switch l.Layer {
			case v1.LayerOS:
				ll := l
				out.OS = &ll
			case v1.LayerK8s:
				ll := l
				out.Distro = &ll
			default:
				out.Layers = append(out.Layers, l)
			}
		}
	}
	for oi, used := range usedOverrides {
		if !used {
			ov := c.Spec.Overrides[oi]
			return nil, errs.Field(fmt.Sprintf("spec.overrides[%d].layer", oi), "no layer %q in the cluster's profiles%s", ov.Layer, map[bool]string{true: " (profile " + ov.Profile + ")", false: ""}[ov.Profile != ""])
		}
	}
	if out.Distro == nil {
		return nil, errs.Field("spec.profiles", "no Kubernetes layer: the first profile must be infra or full")
	}
	b, _ := json.Marshal(out.Status)
	sum := sha256.Sum256(b)
	out.Hash = hex.EncodeToString(sum[:])
	return out, nil
}

// reroot puts a profile's field errors under the cluster's spec, so
// "variables.siteCode" reads "spec.variables.siteCode", and wraps anything
// else with what was being rendered.
func reroot(err error, prefix, what string) error {
	var fl errs.FieldList
	var fe *errs.FieldError
	switch {
	case errors.As(err, &fl):
		out := make(errs.FieldList, 0, len(fl))
		for _, e := range fl {
			out = append(out, &errs.FieldError{Field: prefix + e.Field, Message: what + ": " + e.Message})
		}
		return out
	case errors.As(err, &fe):
		return &errs.FieldError{Field: prefix + fe.Field, Message: what + ": " + fe.Message}
	}
	return fmt.Errorf("%s: %w", what, err)
}
