#!/usr/bin/env bash
# Fetches what `outpost build iso` and the boot test (make boot-test) need
# from Debian into a cache and extracts each package there: the cloud kernel
# (linux-image-*-cloud-amd64: virtio, IDE CD and ISO9660 as modules),
# busybox-static, isolinux and syslinux-common. A second run finds the cache
# complete and only prints the paths.
#
# usage: scripts/fetch-kernel.sh [--cached | --refresh]
#   --cached   print the paths if the cache is complete, else exit 3 (no download)
#   --refresh  fetch again (e.g. after a new kernel reached the archive)
# env:
#   OUTPOST_BOOT_CACHE       cache directory (default ${XDG_CACHE_HOME:-~/.cache}/outpost/boot,
#                            outside the work tree so that fresh clones share it)
#   OUTPOST_KERNEL_PACKAGE   kernel package (default: what linux-image-cloud-amd64 depends on)
#
# Prints KEY=VALUE lines, for `eval` or a Makefile:
#   KERNEL_DIR KERNEL KERNEL_VERSION BUSYBOX ISOLINUX_DIR
# and uses them as: outpost build iso --kernel-dir $KERNEL_DIR --busybox $BUSYBOX --isolinux $ISOLINUX_DIR
set -euo pipefail

cache=${OUTPOST_BOOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outpost/boot}
mode=fetch
case "${1:-}" in
"") ;;
--cached) mode=cached ;;
--refresh) mode=refresh ;;
-h | --help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
*) echo "fetch-kernel: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

paths() {
	local k
	k=$(ls "$cache"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1)
	[ -n "$k" ] && [ -x "$cache/busybox/bin/busybox" ] &&
		[ -f "$cache/isolinux/usr/lib/ISOLINUX/isolinux.bin" ] &&
		[ -f "$cache/isolinux/usr/lib/syslinux/modules/bios/ldlinux.c32" ] || return 1
	echo "KERNEL_DIR=$cache/kernel"
	echo "KERNEL=$k"
	echo "KERNEL_VERSION=${k##*/vmlinuz-}"
	echo "BUSYBOX=$cache/busybox/bin/busybox"
	echo "ISOLINUX_DIR=$cache/isolinux"
}

if [ "$mode" != refresh ] && [ -f "$cache/.complete" ] && paths; then
	exit 0
fi
if [ "$mode" = cached ]; then
	echo "fetch-kernel: no complete cache in $cache (run scripts/fetch-kernel.sh)" >&2
	exit 3
fi

for tool in apt-get apt-cache dpkg-deb; do
	command -v "$tool" >/dev/null || { echo "fetch-kernel: $tool not found: this needs a Debian or Ubuntu machine" >&2; exit 1; }
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

kernel_pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }'; }
pkg=${OUTPOST_KERNEL_PACKAGE:-}
if [ -z "$pkg" ]; then
	pkg=$(kernel_pkg)
	if [ -z "$pkg" ]; then
		echo "fetch-kernel: updating the package lists" >&2
		$SUDO apt-get update -qq >&2
		pkg=$(kernel_pkg)
	fi
	[ -n "$pkg" ] || { echo "fetch-kernel: no linux-image-cloud-amd64 in the package lists" >&2; exit 1; }
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch-kernel: downloading $pkg busybox-static isolinux syslinux-common" >&2
# Root's apt-get download cannot hand the file to the _apt sandbox user in
# a directory it does not own; the warning it prints is noise here.
(cd "$tmp" && apt-get -o APT::Sandbox::User=root download -q "$pkg" busybox-static isolinux syslinux-common >&2)
dpkg-deb -x "$tmp"/linux-image-*.deb "$tmp/kernel"
dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/busybox"
dpkg-deb -x "$tmp"/isolinux_*.deb "$tmp/isolinux"
dpkg-deb -x "$tmp"/syslinux-common_*.deb "$tmp/isolinux"
mkdir -p "$tmp/debs" && mv "$tmp"/*.deb "$tmp/debs/"
# Swap in the new tree only once it is whole.
rm -f "$cache/.complete"
rm -rf "$cache/kernel" "$cache/busybox" "$cache/isolinux" "$cache/debs"
mv "$tmp/kernel" "$tmp/busybox" "$tmp/isolinux" "$tmp/debs" "$cache/"
touch "$cache/.complete"
echo "fetch-kernel: cached in $cache" >&2
paths
