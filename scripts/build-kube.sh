#!/usr/bin/env bash
# Builds the kube-apiserver the integration tests run (internal/testutil/kubetest)
# from the tools module in tools/kube, into a cache outside the work tree, and
# prints its path. A second run finds the binary and only prints the path.
# A cold build takes about 4.5 minutes on 2 cores (a 95 MB stripped binary),
# seconds with a warm Go build cache; there is no download of release
# binaries, only Go modules.
#
# usage: scripts/build-kube.sh [--cached | --rebuild]
#   --cached   print the path if the binary is there, else exit 3 (no build)
#   --rebuild  build again even if the binary is there
# env:
#   OUTPOST_KUBE_CACHE  cache directory (default ${XDG_CACHE_HOME:-~/.cache}/outpost/kube,
#                       outside the work tree so that fresh clones share it);
#                       the binary is $OUTPOST_KUBE_CACHE/<version>/kube-apiserver
#
# etcd is not built here: the tests use Debian's etcd-server (/usr/bin/etcd).
set -euo pipefail

version=v1.32.3
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${OUTPOST_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outpost/kube}
dir=$cache/$version
bin=$dir/kube-apiserver
mode=build
case "${1:-}" in
"") ;;
--cached) mode=cached ;;
--rebuild) mode=rebuild ;;
-h | --help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
*) echo "build-kube: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

if [ "$mode" != rebuild ] && [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
if [ "$mode" = cached ]; then
	exit 3
fi

mkdir -p "$dir"
# Test binaries of several packages may ask for the build at once (go test
# runs packages in parallel): one builds, the others wait and reuse it.
exec 9>"$dir/.lock"
flock 9
if [ "$mode" != rebuild ] && [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

minor=${version#v1.}
minor=${minor%%.*}
# The same variables hack/lib/version.sh sets, or the server (and kubectl
# version) reports v0.0.0 and version-gated behaviour is off.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

echo "build-kube: building kube-apiserver $version into $dir (a few minutes cold)" >&2
start=$(date +%s)
tmp=$(mktemp "$dir/.kube-apiserver.XXXXXX")
trap 'rm -f "$tmp"' EXIT
(
	cd "$root/tools/kube"
	# GOFLAGS replaces the caller's (a -mod=vendor meant for the main module
	# must not apply here). -buildvcs=false: the work tree's git state says
	# nothing about this binary. CGO off, as upstream builds it.
	GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOWORK=off \
		go build -trimpath -ldflags "$ldflags" -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver
)
chmod 0755 "$tmp"
# Rename last, so a build killed half-way never leaves a binary that looks cached.
mv -f "$tmp" "$bin"
trap - EXIT
echo "build-kube: built in $(($(date +%s) - start))s" >&2
echo "$bin"
