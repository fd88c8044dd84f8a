// Package inventory describes an edge host's hardware and OS for the hub:
// CPU, memory, disks, NICs, OS and kernel, DMI serial and UUID. It reads
// everything under a hostos.Root so tests and the simulator can fake a
// machine, and orders what it finds so that Hash changes only when the
// machine does, which lets the agent send the inventory only then.
package inventory
