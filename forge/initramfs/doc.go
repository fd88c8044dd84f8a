// Package initramfs builds the initramfs of Outpost's own boot image: a
// gzip'd newc cpio archive, written in pure Go, holding a static busybox,
// the kernel modules the image needs, the static outpost-agent and an /init
// script.
//
// /init (see InitScript) mounts the kernel file systems, loads the modules,
// picks the site settings — a NoCloud seed (label "cidata") first, then the
// boot medium's /outpost/user-data.yaml (what `outpost build installer`
// adds), then the copy baked into the initramfs —, sets up the network from
// them (DHCP when they name no interface), writes a machine-id and runs the
// agent with its state on a tmpfs, restarting it if it stops: PID 1 must
// not exit. Everything logs to the console (ttyS0 under QEMU -nographic).
//
// The network part of the settings reaches /init as a line-based file that
// the builder derives from the YAML with the same userdata package the
// agent uses (NetworkConfig), because busybox sh cannot parse YAML;
// `outpost build cidata` puts one in the seed next to the settings.
//
// No archive library is used: github.com/cavaliergopher/cpio, the usual
// one, cannot write device numbers, and the image needs /dev/console.
package initramfs
