// Package objects is the typed layer over the store: it turns api/v1 objects
// into store rows and back (the store owns revision and timestamps), and
// builds the write ops, including the events that go with a change.
package objects
