// Package hostid works out the stable ID an edge host enrolls under: the
// user-data override, else the machine's DMI serial or product UUID, else
// /etc/machine-id, with a prefix. The same machine must always get the same
// ID, across reinstalls where possible, because the hub keys everything on it
// and pre-registration hands it out before the box is even unpacked.
package hostid
