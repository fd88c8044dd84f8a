// Package kernel finds a Linux kernel and its modules in an extracted Debian
// kernel package (or a .deb it extracts itself, in pure Go, so that
// `outpost build iso` also runs where there is no dpkg), and works out which
// module files to load, and in which order, for a list of drivers.
//
// Debian's packages ship no modules.dep (depmod runs at install time), so
// the order comes from each module's own "depends=" entry in its .modinfo
// section. The cloud kernel (linux-image-*-cloud-amd64) has virtio, IDE CD
// and ISO9660 support as modules, which is why the boot image needs this at
// all.
package kernel
