// Package client is a typed Go client for the Outpost hub's user API
// (/api/v1, described in docs/api.md): projects, API tokens, registration
// tokens, edge hosts and events, plus watches over the hub's server-sent
// event streams.
//
// Every method takes a context; cancelling it aborts the request, and for a
// watch ends the stream cleanly. Errors the hub answers with are
// *APIError values that unwrap to the sentinels re-exported here
// (ErrNotFound, ErrConflict, ...), so callers can use errors.Is without
// reaching into the module's internal packages.
//
// The package is shared by the outpost CLI, tests and anyone scripting the
// hub; it must stay free of hub internals.
package client
