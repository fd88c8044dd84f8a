// Package engine is the agent's cluster engine: it turns the cluster part of
// a HostSpec into a plan of idempotent steps (OS layer, distro install or
// upgrade, wait for the node, layers), runs them through providers, reports
// progress per step and resumes from its on-disk state after a restart.
//
// Every step is checked before it is applied, and what a step did is written
// to engine.json before the next one starts, so an agent killed in the middle
// of a step redoes at most that step, and only if the provider says it is not
// done. The providers (Distro for Kubernetes itself, LayerApplier for the OS
// layer and the add-ons) are chosen by name from a Registry; the simulated
// ones live in internal/agent/provider/simulated.
package engine
