// Package api is the hub's HTTP surface: the user API under /api/v1 (bearer
// API tokens), the agent API under /agent/v1 (mTLS), watch streams as
// server-sent events, and the middleware every request passes (body limit,
// metrics, logging, panics). Handlers decode, call the service and encode;
// errors become {code, message, field} through package errs.
package api
