// Package examples holds the example files the docs point to, embedded so
// the demo hub can load them; its tests keep them valid against the
// catalog this build carries.
package examples

import _ "embed"

// StoreEdge is examples/store-edge.yaml, a full ClusterProfile.
//
//go:embed store-edge.yaml
var StoreEdge []byte
