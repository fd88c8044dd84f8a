#!/usr/bin/env bash
# Installs the Debian packages the tests use, only those missing. Safe to run
# again. Needs root (or sudo) on a Debian/Ubuntu machine.
set -euo pipefail

need=()
have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_pg || need+=(postgresql)
# Images: xorriso reads and remasters ISOs, cloud-init validates the cidata
# we write, cpio lists initramfs images, QEMU boots our image against a hub.
command -v xorriso >/dev/null || need+=(xorriso)
command -v cloud-init >/dev/null || need+=(cloud-init)
command -v cpio >/dev/null || need+=(cpio)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# Kubernetes: etcd for the kube-apiserver the tests build (scripts/build-kube.sh).
command -v etcd >/dev/null || need+=(etcd-server)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
# The Debian package starts a cluster of its own; the tests start their own
# throwaway servers and need none.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop postgresql 2>/dev/null || true; fi
