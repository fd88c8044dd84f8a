// Package boot is the boot test: it builds Outpost's own boot image, boots
// it in QEMU (software emulation, user-mode networking) against a real hub
// on this machine and waits for the host to enroll and turn Ready. The
// guest reaches the hub through QEMU's 10.0.2.2, which is the host's
// 127.0.0.1.
//
// It needs qemu-system-x86_64 and the Debian packages scripts/fetch-kernel.sh
// caches (the cloud kernel, busybox-static, isolinux, syslinux-common), plus
// xorriso for the installer case. Without QEMU it skips; with QEMU but
// without the cache it skips, except under CI (env CI set), where it runs
// scripts/fetch-kernel.sh itself. Run it with `make boot-test`.
package boot
