// Package storeutil holds what the SQLite and PostgreSQL stores share so
// that they behave the same: the Notify fan-out and the validation of a
// Write's ops.
package storeutil
