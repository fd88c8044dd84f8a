// Package hostexec runs commands on the host for the distro providers and
// the OS layer, so that every command they run goes through one Runner:
// Exec runs it for real, Recorder writes it down and answers from a script,
// which is how the provider contract tests see every command in order
// without a single one touching the machine.
//
// Commands are given with host paths. A provider working on a temporary
// root (tests, the simulator) must use a Recorder: the real runner would
// act on the real host, not on the root.
package hostexec
