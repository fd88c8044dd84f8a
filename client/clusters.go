package client

import (
	"context"
	"fmt"
	"net/http"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// clusterPath is the path of a project's clusters, or of one cluster and
// what follows it.
func clusterPath(project, name string, rest ...string) (string, error) {
	if project == "" {
		return "", errNoName("project")
	}
	if name == "" {
		return apiPath("projects", project, "clusters"), nil
	}
	return apiPath(append([]string{"projects", project, "clusters", name}, rest...)...), nil
}

// oneClusterPath is clusterPath for a route about one cluster, where an
// empty name is a mistake rather than the list.
func oneClusterPath(project, name string, rest ...string) (string, error) {
	if name == "" {
		return "", errNoName("cluster")
	}
	return clusterPath(project, name, rest...)
}

// ListClusters lists a project's clusters.
func (c *Client) ListClusters(ctx context.Context, project string) (*v1.List[v1.Cluster], error) {
	path, err := clusterPath(project, "")
	if err != nil {
		return nil, err
	}
	return list[v1.Cluster](ctx, c, path, nil)
}

// GetCluster returns one cluster with its status: state, health, one entry
// per node, the layers it runs towards.
func (c *Client) GetCluster(ctx context.Context, project, name string) (*v1.Cluster, error) {
	path, err := oneClusterPath(project, name)
	if err != nil {
		return nil, err
	}
	return get[v1.Cluster](ctx, c, path)
}

// CreateCluster creates cl in project. The hub validates the spec against
// the project's hosts and profiles and stores the cluster Pending; its
// controller then claims the hosts and provisions them.
func (c *Client) CreateCluster(ctx context.Context, project string, cl *v1.Cluster) (*v1.Cluster, error) {
	if cl.Metadata.Name == "" {
		return nil, errNoName("cluster")
	}
	path, err := clusterPath(project, "")
	if err != nil {
		return nil, err
	}
	typeMeta(&cl.TypeMeta, v1.KindCluster)
	return send[v1.Cluster](ctx, c, http.MethodPost, path, cl)
}

// UpdateCluster replaces cl's spec and labels (scale, reconfigure,
// upgrade); cl.Metadata.Revision must be the revision it was read at, or
// the hub answers ErrConflict, as it does for a cluster being deleted.
func (c *Client) UpdateCluster(ctx context.Context, project string, cl *v1.Cluster) (*v1.Cluster, error) {
	path, err := oneClusterPath(project, cl.Metadata.Name)
	if err != nil {
		return nil, err
	}
	typeMeta(&cl.TypeMeta, v1.KindCluster)
	return send[v1.Cluster](ctx, c, http.MethodPut, path, cl)
}

// DeleteCluster starts tearing a cluster down and returns it as the hub
// answered (Deleting). Deleting a cluster that is already Deleted removes
// it for good.
func (c *Client) DeleteCluster(ctx context.Context, project, name string) (*v1.Cluster, error) {
	path, err := oneClusterPath(project, name)
	if err != nil {
		return nil, err
	}
	return send[v1.Cluster](ctx, c, http.MethodDelete, path, nil)
}

// AbortCluster stops a cluster that is still Pending or Provisioning and
// tears it down like a delete; for any other state the hub answers
// ErrConflict.
func (c *Client) AbortCluster(ctx context.Context, project, name string) (*v1.Cluster, error) {
	path, err := oneClusterPath(project, name, "abort")
	if err != nil {
		return nil, err
	}
	return send[v1.Cluster](ctx, c, http.MethodPost, path, nil)
}

// DiffCluster returns what each host of the cluster would do if proposed
// replaced its spec, without changing anything. With proposed nil it is
// the cluster's current spec against what its hosts were last told.
func (c *Client) DiffCluster(ctx context.Context, project, name string, proposed *v1.ClusterSpec) (*v1.ClusterDiff, error) {
	path, err := oneClusterPath(project, name, "diff")
	if err != nil {
		return nil, err
	}
	var body any
	if proposed != nil {
		// The hub reads a whole Cluster, of which only the spec counts.
		cl := &v1.Cluster{Metadata: v1.ObjectMeta{Name: name}, Spec: *proposed}
		typeMeta(&cl.TypeMeta, v1.KindCluster)
		body = cl
	}
	out, err := send[v1.ClusterDiff](ctx, c, http.MethodPost, path, body)
	if err == nil && out == nil {
		return nil, fmt.Errorf("diff cluster %q: the hub answered without a body", name)
	}
	return out, err
}

// WatchClusters streams changes to the project's clusters after revision
// since; see WatchHosts for how the channels behave.
func (c *Client) WatchClusters(ctx context.Context, project string, since int64) (<-chan v1.WatchEvent[v1.Cluster], <-chan error) {
	path, err := clusterPath(project, "")
	if err != nil {
		return failedWatch[v1.Cluster](err)
	}
	return Watch[v1.Cluster](ctx, c, path, nil, since)
}
