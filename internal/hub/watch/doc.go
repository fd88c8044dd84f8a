// Package watch turns the store's change log into live notifications: one
// goroutine follows the log (woken by the store's Notify, never by a timer)
// and fans each change out to watch streams and to waiters on one object
// (agent long-polls, pending enrollments). A parked waiter costs a channel,
// not a goroutine.
package watch
