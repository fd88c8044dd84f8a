// Package oslayer applies the OS layer (the ubuntu and opensuse-leap packs)
// to the host, before the Kubernetes distro is installed: it checks that
// the host runs the OS the layer is for, installs the site's extra CA
// certificates, users, files with their owner and mode, packages, kernel
// modules and sysctls, turns swap off, enables or disables services, and
// writes the layer's pre- and postKubernetesCommands as hook scripts.
//
// # Hooks
//
// The commands are not run here: they belong around the distro's start,
// which this applier does not see. It writes them, one per line under
// "set -e", to /etc/outpost/hooks/pre-kubernetes.sh and post-kubernetes.sh
// (0700), and every distro provider runs the first right before it starts
// or restarts its service and the second right after (see package distro).
// A layer without commands removes the script. The commands must be safe to
// run more than once: every install and upgrade runs them, and so does a
// retry.
//
// # Host layout
//
//	/usr/local/share/ca-certificates/outpost-os-<name>.crt   (Ubuntu; /etc/pki/trust/anchors on openSUSE)
//	/etc/modules-load.d/outpost.conf, /etc/sysctl.d/90-outpost.conf
//	the layer's files, where it says, chowned to their owner
//	/etc/outpost/hooks/{pre,post}-kubernetes.sh
//	/var/lib/outpost-agent/providers/os.json                 what was applied, for the next apply and remove
//
// Removing the layer deletes what it wrote (files, certificates, hooks,
// module and sysctl files) and leaves packages, users, services and swap
// as they are: undoing those could break the host, and the next OS layer
// sets them again anyway. kernelArgs are not applied yet (they need a GRUB
// change and a reboot): a layer with some logs a warning.
package oslayer
