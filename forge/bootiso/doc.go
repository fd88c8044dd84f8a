// Package bootiso makes Outpost's own small bootable installer image, the
// output of `outpost build iso`: a Debian kernel, the initramfs of package
// initramfs (busybox, modules, outpost-agent, /init) and optionally baked
// site settings, on an ISO9660 image that a PC BIOS boots through El Torito
// and ISOLINUX.
//
// The image is written in pure Go (package iso, go-diskfs underneath, with
// the boot information table ISOLINUX needs); only isolinux.bin and
// ldlinux.c32 come from Debian's isolinux and syslinux-common packages. It
// is not a hybrid image (no MBR for USB sticks) and has no UEFI boot entry:
// it is meant for VMs and labs. Tests also boot the same kernel and
// initramfs directly (qemu -kernel/-initrd), which Build can write out.
package bootiso
