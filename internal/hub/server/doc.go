// Package server assembles and runs the hub: data directory, store, CA and
// certificates, the first admin token, the change-log follower, the service
// and its background loops, and the two listeners with graceful shutdown.
package server
