// Package simulated is simulation: a simulated distro provider and layer
// applier for the agent's engine, used by the fleet simulator, the demo and
// tests (outpost-agent run --simulate). Nothing is installed: each action
// waits a while, then writes what a real host would now have to state files
// under <root>/var/lib/outpost-sim/ and appends one line saying what it did
// to actions.log there, so tests and people can see that nothing was done
// twice.
//
// Faults are injected from <root>/etc/outpost-sim/faults.yaml, read at every
// action:
//
//	stepDelay: 2s          # how long each action takes (default 300ms)
//	notReady: true         # Status says the node is not Ready
//	fail:
//	  - action: install    # install, upgrade, apply or remove
//	    target: k3s        # distro pack or layer name; empty: any
//	    times: 2           # fail the first 2 attempts (0: every attempt)
//	    message: download failed
//
// Failures already injected are counted in faults-count.json next to the
// state, so times holds across agent restarts.
package simulated
