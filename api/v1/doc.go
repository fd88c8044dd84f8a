// Package v1 holds the wire types shared by the hub, the agent and the CLI:
// the user API objects (shaped like Kubernetes objects), the agent protocol,
// and the error body. It imports nothing of the hub or the agent, so both
// sides and third-party clients can depend on it.
package v1
