package v1

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// APIVersion is the apiVersion of every object this package describes.
const APIVersion = "outpost.dev/v1"

// Kinds.
const (
	KindProject           = "Project"
	KindAPIToken          = "APIToken"
	KindRegistrationToken = "RegistrationToken"
	KindEdgeHost          = "EdgeHost"
	KindEvent             = "Event"
)

// TypeMeta says what an object is, as in Kubernetes.
type TypeMeta struct {
	APIVersion string `json:"apiVersion" yaml:"apiVersion"`
	Kind       string `json:"kind" yaml:"kind"`
}

// ObjectMeta is shared by every object. Revision is the global store revision
// of the object's last write; an update must carry the revision it read.
type ObjectMeta struct {
	Name      string            `json:"name" yaml:"name"`
	Project   string            `json:"project,omitempty" yaml:"project,omitempty"`
	Labels    map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Revision  int64             `json:"revision,omitempty" yaml:"revision,omitempty"`
	CreatedAt time.Time         `json:"createdAt,omitzero" yaml:"createdAt,omitempty"`
	UpdatedAt time.Time         `json:"updatedAt,omitzero" yaml:"updatedAt,omitempty"`
}

// Roles a token can hold in a project.
const (
	RoleAdmin        = "admin"
	RoleEditor       = "editor"
	RoleViewer       = "viewer"
	RoleSiteOperator = "site-operator"
)

// AllProjects in a ProjectRole grants the role in every project; an admin
// there is a hub administrator.
const AllProjects = "*"

// Project is the tenancy boundary: every other object except API tokens lives in one.
type Project struct {
	TypeMeta `json:",inline" yaml:",inline"`
	Metadata ObjectMeta  `json:"metadata" yaml:"metadata"`
	Spec     ProjectSpec `json:"spec" yaml:"spec"`
}

type ProjectSpec struct {
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

// ProjectRole grants Role in Project (or in every project with AllProjects).
type ProjectRole struct {
	Project string `json:"project" yaml:"project"`
	Role    string `json:"role" yaml:"role"`
}

// APIToken authenticates people and automation against the user API.
// The secret is shown once, in the create response; the hub keeps only its hash.
type APIToken struct {
	TypeMeta `json:",inline" yaml:",inline"`
	Metadata ObjectMeta     `json:"metadata" yaml:"metadata"`
	Spec     APITokenSpec   `json:"spec" yaml:"spec"`
	Status   APITokenStatus `json:"status" yaml:"status"`
	// Token is set only in the response that creates the token.
	Token string `json:"token,omitempty" yaml:"token,omitempty"`
}

type APITokenSpec struct {
	Description string        `json:"description,omitempty" yaml:"description,omitempty"`
	Roles       []ProjectRole `json:"roles" yaml:"roles"`
	ExpiresAt   *time.Time    `json:"expiresAt,omitempty" yaml:"expiresAt,omitempty"`
}

type APITokenStatus struct {
	// ID is the public part of the token (the part before the secret).
	ID string `json:"id" yaml:"id"`
}

// Registration token states.
const (
	TokenActive  = "Active"
	TokenRevoked = "Revoked"
	TokenExpired = "Expired"
	TokenUsedUp  = "UsedUp"
)

// RegistrationToken lets edge hosts enroll themselves into a project.
type RegistrationToken struct {
	TypeMeta `json:",inline" yaml:",inline"`
	Metadata ObjectMeta              `json:"metadata" yaml:"metadata"`
	Spec     RegistrationTokenSpec   `json:"spec" yaml:"spec"`
	Status   RegistrationTokenStatus `json:"status" yaml:"status"`
	// Token is set only in the response that creates the token.
	Token string `json:"token,omitempty" yaml:"token,omitempty"`
}

type RegistrationTokenSpec struct {
	Description string     `json:"description,omitempty" yaml:"description,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty" yaml:"expiresAt,omitempty"`
	// MaxUses is how many hosts may enroll with the token; 0 means no limit.
	MaxUses int `json:"maxUses,omitempty" yaml:"maxUses,omitempty"`
	// Labels are given to every host that enrolls with the token.
	Labels  map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Revoked bool              `json:"revoked,omitempty" yaml:"revoked,omitempty"`
}

type RegistrationTokenStatus struct {
	ID    string `json:"id" yaml:"id"`
	Uses  int    `json:"uses" yaml:"uses"`
	State string `json:"state" yaml:"state"`
}

// Edge host states.
const (
	HostUnpaired        = "Unpaired"        // pre-registered, never seen
	HostPendingApproval = "PendingApproval" // enrolled without a token, waiting for a person
	HostReady           = "Ready"           // paired and free
	HostInUse           = "InUse"           // part of a cluster
)

// Edge host health.
const (
	HealthUnknown   = "Unknown"
	HealthHealthy   = "Healthy"
	HealthUnhealthy = "Unhealthy"
	HealthOffline   = "Offline"
)

// LabelName is the label whose value is the host's display name.
const LabelName = "name"

// EdgeHost is one physical or virtual machine. Its name is the host ID.
type EdgeHost struct {
	TypeMeta `json:",inline" yaml:",inline"`
	Metadata ObjectMeta     `json:"metadata" yaml:"metadata"`
	Spec     EdgeHostSpec   `json:"spec" yaml:"spec"`
	Status   EdgeHostStatus `json:"status" yaml:"status"`
}

type EdgeHostSpec struct {
	// DisplayName mirrors the "name" label; it is derived, never stored.
	DisplayName string `json:"displayName,omitempty" yaml:"displayName,omitempty"`
}

type EdgeHostStatus struct {
	State         string     `json:"state" yaml:"state"`
	Health        string     `json:"health" yaml:"health"`
	HealthMessage string     `json:"healthMessage,omitempty" yaml:"healthMessage,omitempty"`
	AgentVersion  string     `json:"agentVersion,omitempty" yaml:"agentVersion,omitempty"`
	LastSeen      *time.Time `json:"lastSeen,omitempty" yaml:"lastSeen,omitempty"`
	PairedAt      *time.Time `json:"pairedAt,omitempty" yaml:"pairedAt,omitempty"`
	// EnrolledWith names the registration token the host enrolled with.
	EnrolledWith string `json:"enrolledWith,omitempty" yaml:"enrolledWith,omitempty"`
	// EnrollmentID names the current pairing of the host. Every client
	// certificate carries it; a certificate of an earlier pairing (before a
	// delete or a re-enrollment with a new key) is refused.
	EnrollmentID string `json:"enrollmentID,omitempty" yaml:"enrollmentID,omitempty"`
	// CertificateSerial is the serial (hex) of the newest client certificate
	// the hub signed for the host, and CertificateExpires its end.
	CertificateSerial  string     `json:"certificateSerial,omitempty" yaml:"certificateSerial,omitempty"`
	CertificateExpires *time.Time `json:"certificateExpires,omitempty" yaml:"certificateExpires,omitempty"`
	// PublicKeyHash is the sha256 (hex) of the host key's SubjectPublicKeyInfo.
	PublicKeyHash string     `json:"publicKeyHash,omitempty" yaml:"publicKeyHash,omitempty"`
	Inventory     *Inventory `json:"inventory,omitempty" yaml:"inventory,omitempty"`
	InventoryHash string     `json:"inventoryHash,omitempty" yaml:"inventoryHash,omitempty"`
	// Cluster names the cluster the host is InUse by.
	Cluster string `json:"cluster,omitempty" yaml:"cluster,omitempty"`
}

// Inventory is the hardware and OS of a host, as its agent sees it.
type Inventory struct {
	Hostname  string `json:"hostname,omitempty" yaml:"hostname,omitempty"`
	Arch      string `json:"arch" yaml:"arch"`
	OS        OSInfo `json:"os" yaml:"os"`
	CPU       CPU    `json:"cpu" yaml:"cpu"`
	MemoryMiB int64  `json:"memoryMiB" yaml:"memoryMiB"`
	Disks     []Disk `json:"disks,omitempty" yaml:"disks,omitempty"`
	NICs      []NIC  `json:"nics,omitempty" yaml:"nics,omitempty"`
	// Serial and ProductUUID come from DMI when the machine has them.
	Serial      string `json:"serial,omitempty" yaml:"serial,omitempty"`
	ProductUUID string `json:"productUUID,omitempty" yaml:"productUUID,omitempty"`
}

type OSInfo struct {
	Name          string `json:"name,omitempty" yaml:"name,omitempty"`
	Version       string `json:"version,omitempty" yaml:"version,omitempty"`
	KernelVersion string `json:"kernelVersion,omitempty" yaml:"kernelVersion,omitempty"`
}

type CPU struct {
	Model string `json:"model,omitempty" yaml:"model,omitempty"`
	Cores int    `json:"cores" yaml:"cores"`
}

type Disk struct {
	Name      string `json:"name" yaml:"name"`
	SizeBytes int64  `json:"sizeBytes" yaml:"sizeBytes"`
	Removable bool   `json:"removable,omitempty" yaml:"removable,omitempty"`
}

type NIC struct {
	Name      string   `json:"name" yaml:"name"`
	MAC       string   `json:"mac,omitempty" yaml:"mac,omitempty"`
	Addresses []string `json:"addresses,omitempty" yaml:"addresses,omitempty"`
	Up        bool     `json:"up" yaml:"up"`
}

// Event is something that happened to an object, for people.
type Event struct {
	TypeMeta `json:",inline" yaml:",inline"`
	Metadata ObjectMeta `json:"metadata" yaml:"metadata"`
	// Object names what the event is about, as "Kind/name".
	Object  string    `json:"object" yaml:"object"`
	Type    string    `json:"type" yaml:"type"` // Normal or Warning
	Reason  string    `json:"reason" yaml:"reason"`
	Message string    `json:"message" yaml:"message"`
	Time    time.Time `json:"time" yaml:"time"`
}

// List is the envelope of every list response.
type List[T any] struct {
	Items []T `json:"items" yaml:"items"`
	// Revision is the store revision the list was read at; pass it as
	// ?since= to watch for what changes after it.
	Revision int64 `json:"revision" yaml:"revision"`
}

// WatchEvent is one server-sent event of a watch stream (event name "change").
type WatchEvent[T any] struct {
	Type     string `json:"type"` // Added, Modified, Deleted
	Revision int64  `json:"revision"`
	Object   T      `json:"object"`
}

// Watch event types.
const (
	WatchAdded    = "Added"
	WatchModified = "Modified"
	WatchDeleted  = "Deleted"
)

// Error is the body of every error response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Error codes.
const (
	CodeBadRequest       = "bad_request"
	CodeInvalid          = "invalid"
	CodeUnauthenticated  = "unauthenticated"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeAlreadyExists    = "already_exists"
	CodeConflict         = "conflict"
	CodeGone             = "gone"
	CodeTooLarge         = "too_large"
	CodeTokenInvalid     = "token_invalid"
	CodeTokenExpired     = "token_expired"
	CodeTokenRevoked     = "token_revoked"
	CodeTokenUsedUp      = "token_used_up"
	CodeInternal         = "internal"
	CodeUnavailable      = "unavailable"
	CodeMethodNotAllowed = "method_not_allowed"
)

// Object is implemented by every top-level object of this package.
type Object interface {
	GetObjectMeta() *ObjectMeta
}

func (o *Project) GetObjectMeta() *ObjectMeta           { return &o.Metadata }
func (o *APIToken) GetObjectMeta() *ObjectMeta          { return &o.Metadata }
func (o *RegistrationToken) GetObjectMeta() *ObjectMeta { return &o.Metadata }
func (o *EdgeHost) GetObjectMeta() *ObjectMeta          { return &o.Metadata }
func (o *Event) GetObjectMeta() *ObjectMeta             { return &o.Metadata }
func (o *HostSpec) GetObjectMeta() *ObjectMeta          { return &o.Metadata }

// Hash is the sha256 (hex) of the inventory's JSON form. The agent sends it
// with every heartbeat and the whole inventory only when it changes.
func (inv *Inventory) Hash() string {
	if inv == nil {
		return ""
	}
	b, _ := json.Marshal(inv)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
