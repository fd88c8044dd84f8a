package v1

import "time"

// KindCluster is the kind of a cluster; KindNodeReport of what an agent last
// said about its part in one.
const (
	KindCluster    = "Cluster"
	KindNodeReport = "NodeReport"
)

// Cluster states (seed 002): Pending → Provisioning → Running ⇄ Updating →
// Deleting → Deleted, and Failed with a reason.
const (
	ClusterPending      = "Pending"
	ClusterProvisioning = "Provisioning"
	ClusterRunning      = "Running"
	ClusterUpdating     = "Updating"
	ClusterDeleting     = "Deleting"
	ClusterDeleted      = "Deleted"
	ClusterFailed       = "Failed"
)

// Update strategies of a node pool.
const (
	// ExpandFirst adds the new node before removing the old (max surge 1,
	// max unavailable 0).
	ExpandFirst = "expand-first"
	// ContractFirst removes the old node first (max surge 0, unavailable 1),
	// for sites with no spare box.
	ContractFirst = "contract-first"
)

// Node roles in a HostSpec.
const (
	RoleInit         = "init"          // the first control-plane node: creates the cluster
	RoleControlPlane = "control-plane" // joins as control plane
	RoleWorker       = "worker"        // joins as worker
)

// Cluster is a Kubernetes cluster on edge hosts.
type Cluster struct {
	TypeMeta `json:",inline" yaml:",inline"`
	Metadata ObjectMeta    `json:"metadata" yaml:"metadata"`
	Spec     ClusterSpec   `json:"spec" yaml:"spec"`
	Status   ClusterStatus `json:"status,omitempty" yaml:"status,omitempty"`
}

type ClusterSpec struct {
	// Profiles: exactly one infra or full profile, then add-on profiles.
	Profiles []ClusterProfileRef `json:"profiles" yaml:"profiles"`
	// Overrides are per-layer values deep-merged over the profile's.
	Overrides []LayerOverride `json:"overrides,omitempty" yaml:"overrides,omitempty"`
	// Variables fill in the profiles' variables.
	Variables map[string]string `json:"variables,omitempty" yaml:"variables,omitempty"`
	// VIP is the control-plane endpoint (IP or DNS name); required with more
	// than one control-plane node.
	VIP        string     `json:"vip,omitempty" yaml:"vip,omitempty"`
	SSHKeys    []string   `json:"sshKeys,omitempty" yaml:"sshKeys,omitempty"`
	NTPServers []string   `json:"ntpServers,omitempty" yaml:"ntpServers,omitempty"`
	Pools      []NodePool `json:"pools" yaml:"pools"`
	// ForceDeleteAfter releases hosts that do not confirm a teardown within
	// this time (Go duration; empty: wait for them forever).
	ForceDeleteAfter string `json:"forceDeleteAfter,omitempty" yaml:"forceDeleteAfter,omitempty"`
	// ResolveGeneration: the cluster keeps the versions its profiles' trains
	// resolved to when it was created; raising this number (outpost clusters
	// upgrade NAME --latest) takes the trains' newest versions.
	ResolveGeneration int64 `json:"resolveGeneration,omitempty" yaml:"resolveGeneration,omitempty"`
}

// ClusterProfileRef names a profile version.
type ClusterProfileRef struct {
	Name    string `json:"name" yaml:"name"`
	Version string `json:"version" yaml:"version"`
}

// LayerOverride overrides one layer's values; Profile may be left out when
// the layer name is unique across the cluster's profiles.
type LayerOverride struct {
	Profile string `json:"profile,omitempty" yaml:"profile,omitempty"`
	Layer   string `json:"layer" yaml:"layer"`
	Values  string `json:"values" yaml:"values"`
}

// NodePool is a group of hosts with one role.
type NodePool struct {
	Name         string `json:"name" yaml:"name"`
	ControlPlane bool   `json:"controlPlane,omitempty" yaml:"controlPlane,omitempty"`
	// AllowWorkloads lets pods run on a control-plane pool's nodes.
	AllowWorkloads bool     `json:"allowWorkloads,omitempty" yaml:"allowWorkloads,omitempty"`
	Hosts          []string `json:"hosts" yaml:"hosts"`
	UpdateStrategy string   `json:"updateStrategy,omitempty" yaml:"updateStrategy,omitempty"`
}

type ClusterStatus struct {
	State  string `json:"state,omitempty" yaml:"state,omitempty"`
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
	// Health rolls up the nodes: Healthy, Unhealthy (a node failed or is
	// Offline), Unknown while provisioning.
	Health string       `json:"health,omitempty" yaml:"health,omitempty"`
	Nodes  []NodeStatus `json:"nodes,omitempty" yaml:"nodes,omitempty"`
	// SpecHash is the hash of the rendered cluster the hub works towards.
	SpecHash string `json:"specHash,omitempty" yaml:"specHash,omitempty"`
	// Layers are the rendered layers with resolved versions the cluster runs
	// towards (values left out: they are in the hosts' specs).
	Layers []ClusterLayerStatus `json:"layers,omitempty" yaml:"layers,omitempty"`
	// UpdatesAvailable lists layers whose profile train now resolves to a
	// newer version than the cluster runs.
	UpdatesAvailable []ResolvedLayerVersion `json:"updatesAvailable,omitempty" yaml:"updatesAvailable,omitempty"`
	// Turn is the host currently allowed to upgrade (one at a time).
	Turn       string      `json:"turn,omitempty" yaml:"turn,omitempty"`
	Conditions []Condition `json:"conditions,omitempty" yaml:"conditions,omitempty"`
	// DeletingSince is when the teardown began (for ForceDeleteAfter).
	DeletingSince *time.Time `json:"deletingSince,omitempty" yaml:"deletingSince,omitempty"`
	// Endpoint is where the cluster's API answers (the VIP or the init node).
	Endpoint string `json:"endpoint,omitempty" yaml:"endpoint,omitempty"`
}

type ClusterLayerStatus struct {
	Profile string `json:"profile" yaml:"profile"`
	Layer   string `json:"layer" yaml:"layer"`
	Pack    string `json:"pack,omitempty" yaml:"pack,omitempty"`
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	Hash    string `json:"hash" yaml:"hash"`
}

// Node states, as the hub sees a host's part in a cluster.
const (
	NodePending   = "Pending"   // spec not sent yet (waiting for the init node)
	NodeApplying  = "Applying"  // working through its plan
	NodeReady     = "Ready"     // plan done, node Ready
	NodeWaiting   = "Waiting"   // an upgrade waits for its turn
	NodeRemoving  = "Removing"  // tearing down
	NodeRemoved   = "Removed"   // torn down, host released
	NodeFailed    = "Failed"    // a step keeps failing
	NodeNoContact = "NoContact" // the host is Offline
)

// NodeStatus is one host's part in a cluster.
type NodeStatus struct {
	Host  string `json:"host" yaml:"host"`
	Pool  string `json:"pool" yaml:"pool"`
	Role  string `json:"role" yaml:"role"`
	State string `json:"state" yaml:"state"`
	// Step is the step running now (or the one that failed), with progress.
	Step      string `json:"step,omitempty" yaml:"step,omitempty"`
	StepsDone int    `json:"stepsDone" yaml:"stepsDone"`
	Steps     int    `json:"steps" yaml:"steps"`
	Message   string `json:"message,omitempty" yaml:"message,omitempty"`
	// AppliedHash is the HostSpec hash the node finished applying.
	AppliedHash       string `json:"appliedHash,omitempty" yaml:"appliedHash,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty" yaml:"kubernetesVersion,omitempty"`
	// Layers is the health of the layers this node manages.
	Layers []LayerHealth `json:"layers,omitempty" yaml:"layers,omitempty"`
}

// Condition is a Kubernetes-style condition.
type Condition struct {
	Type               string    `json:"type" yaml:"type"`
	Status             string    `json:"status" yaml:"status"` // True, False, Unknown
	Reason             string    `json:"reason,omitempty" yaml:"reason,omitempty"`
	Message            string    `json:"message,omitempty" yaml:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime" yaml:"lastTransitionTime"`
}

// HostCluster is the cluster part of a HostSpec: everything one host needs
// to play its role. Hash covers all of it but Turn.
type HostCluster struct {
	Name    string `json:"name"`
	Project string `json:"project"`
	Role    string `json:"role"`
	Pool    string `json:"pool"`
	// AllowWorkloads: a control-plane node that also runs pods (no taint).
	AllowWorkloads bool `json:"allowWorkloads,omitempty"`
	// JoinEndpoint is the VIP, or the init node's address without one;
	// empty for the init node.
	JoinEndpoint string `json:"joinEndpoint,omitempty"`
	// JoinToken is the cluster's join secret (encrypted at rest on the hub,
	// sent only over the agent's mTLS connection).
	JoinToken  string   `json:"joinToken,omitempty"`
	VIP        string   `json:"vip,omitempty"`
	SSHKeys    []string `json:"sshKeys,omitempty"`
	NTPServers []string `json:"ntpServers,omitempty"`
	// Distro is the k8s layer; OS the os layer; Layers everything after them
	// (CNI, CSI, add-ons) in apply order.
	OS     *RenderedLayer  `json:"os,omitempty"`
	Distro *RenderedLayer  `json:"distro,omitempty"`
	Layers []RenderedLayer `json:"layers,omitempty"`
	// Remove asks the host to tear everything down and leave the cluster.
	Remove bool `json:"remove,omitempty"`
	// UpgradeGranted lets the host replace its distro now (the hub grants
	// one host at a time); without it a host with a newer distro in its spec
	// waits, reporting NodeWaiting.
	UpgradeGranted bool `json:"upgradeGranted,omitempty"`
}

// AgentPathStatus is where agents report their progress (on change only).
const AgentPathStatus = "/agent/v1/status"

// Step states.
const (
	StepPending = "Pending"
	StepRunning = "Running"
	StepDone    = "Done"
	StepFailed  = "Failed"
)

// NodeReportSpec is what an agent says about applying its HostSpec.
type NodeReportSpec struct {
	// SpecHash is the hash of the HostSpec the report is about.
	SpecHash string `json:"specHash"`
	// State is one of the Node* states.
	State string       `json:"state"`
	Steps []StepStatus `json:"steps,omitempty"`
	// Message is the last error's text, or what the node waits for.
	Message string `json:"message,omitempty"`
	// ControlPlaneUp: the node's Kubernetes API answers (init node: joiners
	// may start). NodeReady: the node is Ready.
	ControlPlaneUp    bool   `json:"controlPlaneUp,omitempty"`
	NodeReady         bool   `json:"nodeReady,omitempty"`
	Address           string `json:"address,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// Removed: the host tore down its part of the cluster.
	Removed bool `json:"removed,omitempty"`
	// Layers is each applied layer's health as the cluster's API shows it
	// (reported by the node that manages cluster-wide objects).
	Layers []LayerHealth `json:"layers,omitempty"`
}

// Layer health states.
const (
	LayerApplied     = "applied"
	LayerProgressing = "progressing"
	LayerFailed      = "failed"
)

// LayerHealth is one layer's state in the cluster.
type LayerHealth struct {
	Name    string `json:"name" yaml:"name"`
	State   string `json:"state" yaml:"state"`
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
}

// StepStatus is one step of an agent's plan.
type StepStatus struct {
	Name     string     `json:"name"`
	State    string     `json:"state"`
	Attempts int        `json:"attempts,omitempty"`
	Message  string     `json:"message,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
}

// NodeReport is the hub's stored copy of an agent's latest report (one per
// host, named by host ID).
type NodeReport struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta     `json:"metadata"`
	Spec     NodeReportSpec `json:"spec"`
}

func (o *Cluster) GetObjectMeta() *ObjectMeta    { return &o.Metadata }
func (o *NodeReport) GetObjectMeta() *ObjectMeta { return &o.Metadata }

// ClusterDiff is what each host would do if a cluster spec were applied.
type ClusterDiff struct {
	Cluster string     `json:"cluster"`
	Hosts   []HostDiff `json:"hosts"`
}

// HostDiff lists one host's actions, in the order it would take them; an
// empty list means the host would do nothing.
type HostDiff struct {
	Host    string   `json:"host"`
	Role    string   `json:"role,omitempty"`
	Actions []string `json:"actions"`
}
