// Package hubtest runs a real Outpost hub in the test process, so API tests
// exercise the same server.Run, store, TLS listeners and middleware a
// deployed hub does instead of a hand-assembled handler.
//
// Each Start gets its own data directory (a fresh SQLite database, hub CA and
// admin token) and free loopback ports, and is stopped when the test ends:
//
//	hub := hubtest.Start(t)
//	resp, body := hub.Do(t, "GET", "/api/v1/projects", hub.AdminToken, nil)
//
// Starting a hub takes well under a second, so tests start one each rather
// than sharing state between them.
package hubtest
