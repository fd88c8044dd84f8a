// Package pki holds the small amount of X.509 the hub and the agent share:
// keys, certificate requests, the hub's CA that signs agent client
// certificates, and an atomic file write for keys and certificates.
package pki
