// Package sim is simulation: simulated edge hosts for the demo fleet (and,
// later, the fleet simulator). A simulated host is a directory laid out like
// the parts of a Linux root the agent reads (/etc/machine-id, /proc, /sys,
// DMI) and a real agent running against it in-process, talking to the hub
// over real TLS sockets. Nothing here pretends to be anything else: hosts it
// makes carry the label simulated=true.
package sim
