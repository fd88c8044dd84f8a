// Package auth makes and checks the hub's secrets-bearing tokens (API tokens
// and registration tokens, stored only as hashes) and decides what a caller
// may do: roles per project, ordered viewer < site-operator < editor < admin.
package auth
