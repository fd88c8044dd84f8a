package v1

// AgentProtocolVersion numbers what the agent and the hub can say to each other.
// The agent sends it on every request (header Outpost-Agent-Protocol); the hub
// refuses versions it no longer speaks with 400 and code "bad_request".
//
//	1: enroll (token, pre-registration, approval), renew, heartbeat with
//	   inventory on change, long-poll for the HostSpec.
//	2: HostSpec.Cluster (role, distro, layers, join, remove, upgrade turn)
//	   and status reports (AgentPathStatus).
const AgentProtocolVersion = 2

// HeaderAgentProtocol carries AgentProtocolVersion on agent requests.
const HeaderAgentProtocol = "Outpost-Agent-Protocol"

// Agent API paths (on the agent listener, mTLS).
const (
	AgentPathEnroll    = "/agent/v1/enroll"
	AgentPathRenew     = "/agent/v1/renew"
	AgentPathHeartbeat = "/agent/v1/heartbeat"
	AgentPathSpec      = "/agent/v1/spec"
	// AgentPathArtifacts?url=U[&sha256=S] streams an artifact through the
	// hub's cache, so a site downloads each file from upstream once.
	AgentPathArtifacts = "/agent/v1/artifacts"
)

// KindHostSpec is the kind of the stored HostSpec (one per paired host).
const KindHostSpec = "HostSpec"

// EnrollRequest asks the hub for a client certificate for a host.
// Enroll is the one agent call made without a client certificate.
type EnrollRequest struct {
	HostID string `json:"hostID"`
	// CSR is a PEM certificate request signed by the host's own key; its
	// subject common name must be HostID.
	CSR string `json:"csr"`
	// RegistrationToken, when set, enrolls the host at once into the token's
	// project. Without it the host waits in Project for approval, unless it
	// was pre-registered there (then it pairs at once).
	RegistrationToken string            `json:"registrationToken,omitempty"`
	Project           string            `json:"project,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	AgentVersion      string            `json:"agentVersion,omitempty"`
	Inventory         *Inventory        `json:"inventory,omitempty"`
}

// Enrollment results.
const (
	EnrollApproved = "Approved"
	EnrollPending  = "Pending"
)

// EnrollResponse is 200 with a certificate, or 202 with Status Pending:
// the agent repeats the same request (same key) until it is approved.
type EnrollResponse struct {
	Status  string `json:"status"`
	HostID  string `json:"hostID"`
	Project string `json:"project,omitempty"`
	// Certificate is the PEM client certificate; CACertificate the PEM CA
	// that signs both it and the hub's agent-listener certificate.
	Certificate   string `json:"certificate,omitempty"`
	CACertificate string `json:"caCertificate,omitempty"`
	// RetryAfterSeconds says when to ask again while pending.
	RetryAfterSeconds int `json:"retryAfterSeconds,omitempty"`
}

// RenewRequest asks for a fresh certificate for the same or a new key.
type RenewRequest struct {
	CSR string `json:"csr"`
}

type RenewResponse struct {
	Certificate   string `json:"certificate"`
	CACertificate string `json:"caCertificate"`
}

// HeartbeatRequest says the agent is alive. Inventory is sent only when its
// hash differs from the one the hub last acknowledged (or the hub asks).
type HeartbeatRequest struct {
	AgentVersion  string     `json:"agentVersion,omitempty"`
	InventoryHash string     `json:"inventoryHash,omitempty"`
	Inventory     *Inventory `json:"inventory,omitempty"`
	// Health is Healthy or Unhealthy as the agent judges its host.
	Health        string `json:"health,omitempty"`
	HealthMessage string `json:"healthMessage,omitempty"`
}

type HeartbeatResponse struct {
	// SendInventory asks for the full inventory on the next heartbeat,
	// because the hub's copy does not match InventoryHash.
	SendInventory bool `json:"sendInventory,omitempty"`
	// IntervalSeconds is how often the hub wants heartbeats.
	IntervalSeconds int `json:"intervalSeconds"`
}

// HostSpec is everything the host should be, computed by the hub. It is empty
// until the host is part of a cluster. Revision increases with every change;
// Hash is a content hash of the spec.
type HostSpec struct {
	TypeMeta `json:",inline"`
	// Metadata.Name is the host ID; Metadata.Revision the spec's revision.
	Metadata ObjectMeta `json:"metadata"`
	// Hash is the sha256 of the spec's content, so the agent can tell a
	// changed spec from a re-sent one.
	Hash string `json:"hash"`
	// Cluster is set while the host is part of a cluster.
	Cluster *HostCluster `json:"cluster,omitempty"`
}

// The spec long-poll: GET AgentPathSpec?since=REV&wait=SECONDS answers 200
// with a HostSpec whose Revision > REV, or 304 when none came within wait.
