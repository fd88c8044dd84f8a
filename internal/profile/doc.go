// Package profile reads, checks and renders cluster profiles: versioned
// stacks of layers (seed 002) from which the hub computes what every host of
// a cluster runs.
//
// Decode reads a profile from YAML strictly (unknown keys are errors with
// their line). Validate checks it against the pack catalog and returns an
// errs.FieldList whose paths name layers and variables by name:
// `spec.layers[calico].version`, `spec.variables[podCIDR].default`.
// Render turns a valid profile and a cluster's variables into a
// v1.RenderedProfile. CheckUpdate, Bump and Clone keep published versions
// immutable.
//
// The package does not parse versions or trains itself: the caller injects a
// Resolver (the catalog's), and a PackLookup to find packs, so the package
// needs neither the store nor the catalog.
//
// # Layer order
//
// A layer is a pack at a version or on a train (1.x, 1.30.x), or a raw
// manifest layer (no pack, only manifests), which counts as an add-on. An
// infra or full profile has exactly one os, one k8s, one cni and one csi
// layer, as its first four layers in that order; a full profile may have
// add-on layers after them, an infra profile may not (it can attach
// manifests to its four layers instead). An addon profile has only add-on
// layers. Layers are applied in profile order, so the order is also the
// install order.
//
// # Values pipeline
//
// A layer's values are built in this order, each step deep-merged over the
// one before:
//
//  1. the resolved pack version's default values;
//  2. presets: first the automatic ones — the k8s pack's "external-cni"
//     preset when the profile has a CNI layer, unless a preset of its group
//     was chosen — then the layer's chosen presets, in order (each removes
//     its paths, then merges its values);
//  3. the layer's own values, rendered first as a Go template with .Vars
//     (missingkey=error).
//
// Merging is by key for mappings; anything else (scalars, lists, a mapping
// over a scalar) is replaced; a null in the later document deletes the key.
// The result is canonical YAML — keys sorted, one spelling for null and
// booleans, scalars otherwise as written (1.30 stays 1.30) — so equal values
// hash equally. Keys are strings, as in JSON and Helm.
//
// Only what the profile author wrote is a template: layer values and
// attached or raw manifests (and a manifest pack's own manifests, which are
// templates over the pack's values by design). Pack default values and
// presets are data: charts that run tpl on their values carry
// `{{ .Release.Name }}` and must receive it untouched. Manifests see .Vars
// and .Values, the layer's final values. The template functions are Go's
// built-ins plus quote.
//
// # Hashes
//
// Each rendered layer's Hash is the sha256 of its JSON form (without the
// hash); the profile's Hash is the sha256 of its layers' JSON. Name, version
// and description are not hashed on purpose: a new profile version with the
// same stack asks hosts to do nothing. A train that moves changes the hash.
package profile
