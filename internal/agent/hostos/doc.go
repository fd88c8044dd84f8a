// Package hostos is the one door through which the agent touches the host's
// files. Every path is rooted at a configurable directory, so tests and the
// fleet simulator can run many agents side by side on one machine, each with
// its own fake /etc, /proc and /sys, without root.
package hostos
