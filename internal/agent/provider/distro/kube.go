package distro

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// ReadyJSONPath picks the status of a node's Ready condition.
const ReadyJSONPath = `{.status.conditions[?(@.type=="Ready")].status}`

// Kube is the kubectl a distro ships, with one of its kubeconfigs.
type Kube struct {
	Env *Env
	// Kubectl is the command and its leading arguments: {"k3s",
	// "kubectl"}, {"/var/lib/rancher/rke2/bin/kubectl"}.
	Kubectl []string
	// Kubeconfig is a host path: the admin kubeconfig on servers, the
	// kubelet's on workers.
	Kubeconfig string
}

// Available reports whether the kubeconfig is there (the distro has
// started at least once).
func (k Kube) Available() bool { return k.Env.Exists(k.Kubeconfig) }

func (k Kube) run(ctx context.Context, args ...string) (string, error) {
	full := append(append(append([]string{}, k.Kubectl[1:]...), "--kubeconfig", k.Kubeconfig), args...)
	return k.Env.Run.Run(ctx, k.Kubectl[0], full...)
}

// IsNotFound reports whether kubectl said the object does not exist.
func IsNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), "(NotFound)")
}

// NodeReady reports whether the node's Ready condition is True.
func (k Kube) NodeReady(ctx context.Context, node string) (bool, error) {
	out, err := k.run(ctx, "get", "node", node, "-o", "jsonpath="+ReadyJSONPath)
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) == "True", nil
}

// WaitReady polls until the node is Ready, for at most the Env's
// ReadyTimeout.
func (k Kube) WaitReady(ctx context.Context, node string) error {
	wctx, cancel := context.WithTimeout(ctx, k.Env.ReadyTimeout)
	defer cancel()
	var last error
	for {
		ready, err := k.NodeReady(wctx, node)
		if ready {
			return nil
		}
		if err != nil {
			last = err
		}
		if !k.Env.Sleep(wctx, k.Env.PollInterval) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if last != nil {
				return fmt.Errorf("node %s is not Ready after %s: %w", node, k.Env.ReadyTimeout, last)
			}
			return fmt.Errorf("node %s is not Ready after %s", node, k.Env.ReadyTimeout)
		}
	}
}

// Nodes lists the cluster's node names.
func (k Kube) Nodes(ctx context.Context) ([]string, error) {
	out, err := k.run(ctx, "get", "nodes", "-o", "name")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Fields(out) {
		names = append(names, strings.TrimPrefix(l, "node/"))
	}
	return names, nil
}

// Drain cordons the node and evicts its pods, unless it is the cluster's
// only node: its pods would have nowhere to go, and the distro keeps them
// running across the restart anyway. A node whose API does not answer
// (an earlier attempt stopped the distro half-way) is not drained either:
// nothing can be drained through it, and waiting for it would keep the
// upgrade that repairs it from ever running.
func (k Kube) Drain(ctx context.Context, node string) error {
	nodes, err := k.Nodes(ctx)
	if err != nil {
		k.Env.Log.Warn("the API does not answer: upgrading without drain", "node", node, "error", err)
		return nil
	}
	if len(nodes) <= 1 {
		k.Env.Log.Info("single-node cluster: not draining", "node", node)
		return nil
	}
	if _, err := k.run(ctx, "cordon", node); err != nil {
		return fmt.Errorf("cordon %s: %w", node, err)
	}
	timeout := k.Env.DrainTimeout.String()
	if _, err := k.run(ctx, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout="+timeout); err != nil {
		return fmt.Errorf("drain %s: %w", node, err)
	}
	return nil
}

// Uncordon lets pods on the node again; it is a no-op on a node that was
// not cordoned, so it also undoes a cordon an interrupted upgrade left.
func (k Kube) Uncordon(ctx context.Context, node string) error {
	if _, err := k.run(ctx, "uncordon", node); err != nil {
		return fmt.Errorf("uncordon %s: %w", node, err)
	}
	return nil
}

// DeleteNode removes the node object, which for k3s and rke2 also takes
// the node out of the etcd cluster. Best effort: a failure is logged.
func (k Kube) DeleteNode(ctx context.Context, node string) {
	if !k.Available() {
		return
	}
	if _, err := k.run(ctx, "delete", "node", node, "--wait=false"); err != nil && !IsNotFound(err) {
		k.Env.Log.Warn("delete node object", "node", node, "error", err)
	}
}

// node is the part of a Node object Status reads.
type node struct {
	Status struct {
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
		NodeInfo struct {
			KubeletVersion string `json:"kubeletVersion"`
		} `json:"nodeInfo"`
	} `json:"status"`
}

// NodeStatus is what k says of the node: Joined when its Node object
// exists, NodeReady from its Ready condition, the kubelet's version and
// InternalIP, and for a server whether its API answers /readyz. Without a
// kubeconfig yet, the node is simply not there.
func (k Kube) NodeStatus(ctx context.Context, name string, server bool) (engine.NodeState, error) {
	var st engine.NodeState
	if !k.Available() {
		return st, nil
	}
	ctx, cancel := context.WithTimeout(ctx, StatusTimeout)
	defer cancel()
	if server {
		_, err := k.run(ctx, "get", "--raw", "/readyz")
		st.ControlPlaneUp = err == nil
	}
	out, err := k.run(ctx, "get", "node", name, "-o", "json")
	if IsNotFound(err) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("node %s: %w", name, err)
	}
	var n node
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		return st, fmt.Errorf("node %s: %w", name, errors.New("kubectl printed no node object"))
	}
	st.Joined = true
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			st.NodeReady = c.Status == "True"
		}
	}
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" && st.Address == "" {
			st.Address = a.Address
		}
	}
	st.KubernetesVersion = trimVersion(n.Status.NodeInfo.KubeletVersion)
	return st, nil
}
