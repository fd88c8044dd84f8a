// Package pgtest runs a real, throwaway PostgreSQL server for tests, so the
// PostgreSQL store is tested against the database it runs on in production
// rather than a fake. One server is started per test binary, on first use,
// and every caller of Start gets its own fresh database on it, so tests stay
// independent without paying for a server start each.
//
// A package that uses it calls Main from its TestMain so the server is
// stopped when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// The server binaries come from the Debian package postgresql. Without them
// tests are skipped, except under CI (the CI environment variable is set),
// where a missing server is a failure: CI must install it.
package pgtest
