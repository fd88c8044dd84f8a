// Package service is the hub's behaviour behind both APIs: projects, API and
// registration tokens, edge hosts, enrollment, heartbeats and presence, and
// the spec long-poll. HTTP handlers stay thin and call it; every method takes
// the caller (a principal or an authenticated host) and checks authorization
// itself, so no path can forget to.
package service
