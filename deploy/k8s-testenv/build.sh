#!/usr/bin/env bash
# Builds the Kubernetes test environment (kube-apiserver, kube-scheduler, etcd, kwok) and helm (for
# the chart tests) from the Go module proxy into a cache folder outside the repository, only what is
# missing.
#
#   deploy/k8s-testenv/build.sh            build what is missing, print the bin folder last
#   deploy/k8s-testenv/build.sh --print-dir print the bin folder, build nothing
#
# The folder is ${GLIA_K8S_TESTENV:-$HOME/.cache/glia/k8s-testenv/<version>}, <version> naming the
# pinned Kubernetes release and a digest of this script and the modules below (a change rebuilds;
# Go's build cache keeps such a rebuild to the links where the sources did not change).
# Concurrent runs wait on a lock (CI starts one in the background; the pytest fixture runs it again
# and waits for the first to finish). Go's build cache sits beside it (GLIA_K8S_GOCACHE).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
k8s_version=v1.37.2
digest="$(cat "$here/build.sh" "$here"/*/go.mod "$here"/*/go.sum "$here"/*/*.go | sha256sum | cut -c1-10)"
root="${GLIA_K8S_TESTENV:-$HOME/.cache/glia/k8s-testenv/$k8s_version-$digest}"
bin="$root/bin"

if [ "${1:-}" = "--print-dir" ]; then
  echo "$bin"
  exit 0
fi

# module folder : package : binary name
targets=(
  "etcd:.:etcd"
  "kwok:sigs.k8s.io/kwok/cmd/kwok:kwok"
  "kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver:kube-apiserver"
  "kube-apiserver:k8s.io/kubernetes/cmd/kube-scheduler:kube-scheduler"
  "kube-apiserver:k8s.io/kubernetes/cmd/kube-controller-manager:kube-controller-manager"
  "helm:helm.sh/helm/v3/cmd/helm:helm"
)

# The Kubernetes binaries report their release (as a release build does), not v0.0.0-master.
version_flags="-X k8s.io/component-base/version.gitVersion=$k8s_version"
version_flags+=" -X k8s.io/component-base/version.gitMajor=1"
version_flags+=" -X k8s.io/component-base/version.gitMinor=$(echo "$k8s_version" | cut -d. -f2)"
version_flags+=" -X k8s.io/component-base/version.gitTreeState=clean"
version_flags+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"

# helm reports its release and renders charts for the Kubernetes minor its client-go pins (helm's
# Makefile sets the same variables; unset, it would say v3.22 and assume Kubernetes 1.20).
helm_version="$(awk '$1 == "helm.sh/helm/v3" {print $2}' "$here/helm/go.mod")"
helm_k8s_minor=37
helm_flags="-X helm.sh/helm/v3/internal/version.version=$helm_version"
helm_flags+=" -X helm.sh/helm/v3/internal/version.metadata="
helm_flags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in lint/rules chartutil; do
  helm_flags+=" -X helm.sh/helm/v3/pkg/$p.k8sVersionMajor=1"
  helm_flags+=" -X helm.sh/helm/v3/pkg/$p.k8sVersionMinor=$helm_k8s_minor"
done

log() { printf '[k8s-testenv %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

missing() {
  local t
  for t in "${targets[@]}"; do
    [ -x "$bin/${t##*:}" ] || return 0
  done
  return 1
}

if ! missing; then
  log "all binaries present in $bin (nothing to build)"
  echo "$bin"
  exit 0
fi

go="$(command -v go || echo /usr/local/go/bin/go)"
[ -x "$go" ] || { log "no Go toolchain (go on PATH or /usr/local/go/bin/go)"; exit 1; }

mkdir -p "$bin"
exec 9>"$root/.lock"
if ! flock -n 9; then
  log "another build holds $root/.lock; waiting for it"
  flock 9
fi

export GOCACHE="${GLIA_K8S_GOCACHE:-$HOME/.cache/glia/k8s-testenv/go-build}"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
log "Go $("$go" env GOVERSION), GOCACHE=$GOCACHE, GOMODCACHE=$("$go" env GOMODCACHE)"

start_all=$(date +%s)
for t in "${targets[@]}"; do
  IFS=: read -r module pkg name <<<"$t"
  if [ -x "$bin/$name" ]; then
    log "$name: present"
    continue
  fi
  log "$name: building $pkg (module deploy/k8s-testenv/$module)"
  start=$(date +%s)
  flags="-s -w"
  [ "$module" = kube-apiserver ] && flags+=" $version_flags"
  [ "$module" = helm ] && flags+=" $helm_flags"
  (cd "$here/$module" && nice -n 19 "$go" build -trimpath -ldflags "$flags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  log "$name: built in $(($(date +%s) - start)) s"
done
log "done in $(($(date +%s) - start_all)) s: $bin"
echo "$bin"
