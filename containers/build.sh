#!/usr/bin/env bash
# Build the radiofind container image with podman, tag it, and smoke-test it.
#
#   containers/build.sh              build radiofind:<version> and radiofind:latest, then test them
#   containers/build.sh --no-test    build and tag only
#   containers/build.sh --test-only  test an image built earlier
#
# Works on a Debian 12 machine with no container engine and no registry access (only apt and PyPI):
#   1. installs podman, runc and debootstrap with apt when missing;
#   2. writes the podman settings it needs (runtime runc, capped ulimits) into a file of its own,
#      ~/.config/radiofind/containers.conf, and points CONTAINERS_CONF at it for its own podman
#      calls only; no system file is changed;
#   3. makes a Debian 12 base image once with `debootstrap --variant=minbase` + `podman import`
#      (localhost/radiofind-bookworm-base; later builds reuse it, RADIOFIND_REBUILD_BASE=1 remakes
#      it);
#   4. builds containers/Containerfile on it with host networking, the host's CA bundle mounted
#      for pip, after removing earlier radiofind builds that no tag names any more (each rebuild
#      leaves one, ~4 GB) and checking that the container storage has room; removes the build
#      it replaced afterwards;
#   5. runs `radiofind demo` and a `stimela run` of the shipped recipe inside the image, with no
#      network, writing into a temporary folder, and checks exit codes and output files.
# Prints the build time, the image size and the smoke-test times; exits non-zero on any failure.
#
# Environment: RADIOFIND_IMAGE (image name, default radiofind), RADIOFIND_BASE (use this base image
# instead of making one, e.g. debian:bookworm-slim where a registry is reachable),
# RADIOFIND_APT_MIRROR (Debian mirror for debootstrap; default: the host's), RADIOFIND_DEMO_ARGS
# (default "--size 1024 --n-sources 300"), RADIOFIND_KEEP_SMOKE=1 keeps the smoke-test folder,
# RADIOFIND_BUILD_FREE_GB (free space the build insists on, default 10).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
image=${RADIOFIND_IMAGE:-radiofind}
base_image=localhost/radiofind-bookworm-base:latest
demo_args=${RADIOFIND_DEMO_ARGS:---size 1024 --n-sources 300}
build=1 test=1
case "${1:-}" in
  "") ;;
  --no-test) test=0 ;;
  --test-only) build=0 ;;
  -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed -E 's/^# ?//'; exit 0 ;;
  *) echo "usage: $0 [--no-test|--test-only]" >&2; exit 2 ;;
esac

log() { printf '[build.sh] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

sudo_=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "need root or sudo to install packages and run debootstrap"
  sudo_="sudo"
fi

# The version tag comes from the package; setup.cfg must agree with it.
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/plugin/__init__.py")
cfg_version=$(sed -n 's/^version = *//p' "$repo/setup.cfg" | awk 'NR == 1')
[ -n "$version" ] || die "no __version__ in plugin/__init__.py"
[ "$version" = "$cfg_version" ] \
  || die "plugin/__init__.py says $version, setup.cfg says $cfg_version"

# 1. Tools.
missing=()
for p in podman runc debootstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  $sudo_ apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Podman settings, in a file of our own. crun fails on hosts with mixed cgroup v1/v2
# hierarchies, runc works; the default nofile limit can exceed the host's hard limit, which makes
# every container fail to start, so cap it at the hard limit.
conf_dir=${XDG_CONFIG_HOME:-$HOME/.config}/radiofind
mkdir -p "$conf_dir"
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
cat > "$conf_dir/containers.conf" <<EOF
# Written by radiofind's containers/build.sh; used only through CONTAINERS_CONF by that script.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$conf_dir/containers.conf"
pm() { $sudo_ env CONTAINERS_CONF="$CONTAINERS_CONF" podman "$@"; }

# 3. Base image: Debian 12 made locally (no registry is needed).
host_mirror() {
  # The first Debian archive (not the security one) the host's apt uses.
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
      2>/dev/null | grep -v '^[[:space:]]*#' \
      | grep -oE '(https?|file)://[^ ]*/debian/?( |$)' | tr -d ' ' | awk 'NR == 1' || true
}
make_base() {
  local mirror rootfs t0
  mirror=${RADIOFIND_APT_MIRROR:-$(host_mirror)}
  mirror=${mirror:-http://deb.debian.org/debian}
  mirror=${mirror%/}
  rootfs=$(mktemp -d /var/tmp/radiofind-rootfs.XXXXXX)
  t0=$(now)
  log "making the base image $base_image: debootstrap --variant=minbase bookworm from $mirror"
  $sudo_ debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null \
    || { $sudo_ rm -rf "$rootfs"; die "debootstrap"; }
  # The same suites as Docker Hub's debian:bookworm images: release, updates and security.
  $sudo_ tee "$rootfs/etc/apt/sources.list" >/dev/null <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
  $sudo_ rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  $sudo_ tar -C "$rootfs" -c . | pm import -q - "$base_image" >/dev/null || die "podman import"
  $sudo_ rm -rf "$rootfs"
  log "base image made in $(since "$t0") s"
}

if [ "$build" = 1 ]; then
  if [ -n "${RADIOFIND_BASE:-}" ]; then
    base_image=$RADIOFIND_BASE
  elif [ "${RADIOFIND_REBUILD_BASE:-0}" = 1 ] || ! pm image exists "$base_image"; then
    make_base
  else
    log "reusing the base image $base_image"
  fi

  # 4. Build.
  build_args=(--build-arg "BASE=$base_image")
  # A base made here must never be looked up in a registry; a named one (RADIOFIND_BASE) may be.
  [ -n "${RADIOFIND_BASE:-}" ] || build_args+=(--pull=never)
  volumes=()
  ca=/etc/ssl/certs/ca-certificates.crt
  if [ -r "$ca" ]; then
    volumes=(-v "$ca:/run/host-ca.crt:ro")
    build_args+=(--build-arg PIP_CERT=/run/host-ca.crt)
  fi
  # Each rebuild leaves the image it replaced untagged; without this, repeated builds fill the
  # disk (seen: 65 images, 109 GB). Only images carrying the Containerfile's label are touched.
  prune_superseded() {
    pm image prune -f --filter "label=org.opencontainers.image.title=radiofind" >/dev/null \
      || log "warning: could not remove superseded radiofind images"
  }
  prune_superseded
  store=$(pm info --format '{{.Store.GraphRoot}}')
  free_gb=$(df -Pk "$store" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
  need_gb=${RADIOFIND_BUILD_FREE_GB:-10}
  [ "$free_gb" -ge "$need_gb" ] || die "only $free_gb GB free in the container storage $store;" \
    "the build needs ~$need_gb GB (the image is ~4 GB and is written twice while committed)." \
    "Free space, e.g. podman image prune, or set RADIOFIND_BUILD_FREE_GB."
  log "building $image:$version from $base_image ($free_gb GB free in $store)"
  t0=$(now)
  pm build --network host --layers --force-rm "${build_args[@]}" "${volumes[@]}" \
    --ignorefile "$here/Containerfile.dockerignore" -f "$here/Containerfile" \
    -t "$image:$version" -t "$image:latest" "$repo" || die "podman build"
  build_s=$(since "$t0")
  log "built $image:$version in $build_s s"
  prune_superseded
fi

pm image exists "$image:$version" || die "no image $image:$version (build it first)"
size_b=$(pm image inspect --format '{{.Size}}' "$image:$version")
size_h=$(pm images --format '{{.Size}}' "$image:$version" | awk 'NR == 1')

# 5. Smoke tests, offline (--network none), as in a batch job: outputs go to a mounted folder.
if [ "$test" = 1 ]; then
  smoke=$(mktemp -d /var/tmp/radiofind-smoke.XXXXXX)
  [ "${RADIOFIND_KEEP_SMOKE:-0}" = 1 ] || trap '$sudo_ rm -rf "$smoke"' EXIT
  inside() { pm run --rm --network none -v "$smoke:/data" -w /data "$image:$version" "$@"; }

  log "smoke test 1: radiofind demo $demo_args"
  t0=$(now)
  # shellcheck disable=SC2086  # demo_args is a list of words
  inside radiofind demo $demo_args -o /data/demo > "$smoke/demo.log" 2>&1 \
    || { tail -30 "$smoke/demo.log" >&2; die "radiofind demo exited non-zero"; }
  demo_s=$(since "$t0")
  for f in summary.json comparison.txt sim/truth.fits sim/natural-image.fits \
           natural/metrics/metrics.json uniform/metrics/metrics.json uniform/metrics/metrics.png; do
    [ -s "$smoke/demo/$f" ] || die "radiofind demo: missing demo/$f"
  done
  grep -q "S90" "$smoke/demo/comparison.txt" || die "radiofind demo: no S90 row in comparison.txt"

  log "smoke test 2: stimela doc + stimela run radiofind.recipes::simulate-detect.yml"
  t0=$(now)
  inside stimela doc radiofind.recipes::simulate-detect.yml > "$smoke/doc.log" 2>&1 \
    || { tail -30 "$smoke/doc.log" >&2; die "stimela doc exited non-zero"; }
  inside stimela run radiofind.recipes::simulate-detect.yml dir=/data/sd size=384 n_sources=25 \
      snr_scale=6 seed=3 > "$smoke/stimela.log" 2>&1 \
    || { tail -40 "$smoke/stimela.log" >&2; die "stimela run exited non-zero"; }
  stimela_s=$(since "$t0")
  for w in natural uniform; do
    for f in "$w-image.fits" "$w-pybdsf.srl.fits" "$w-radiofind/$w-image.radiofind.fits" \
             "$w-metrics/metrics.json"; do
      [ -s "$smoke/sd/$f" ] || die "stimela run: missing sd/$f"
    done
  done
  log "smoke tests passed"
  sed -n '/weighting (model/,$p' "$smoke/demo/comparison.txt" | awk 'NR <= 12' >&2
fi

echo "radiofind image: $image:$version (also $image:latest)"
if [ -n "${build_s:-}" ]; then echo "build time: $build_s s"; fi
echo "image size: $size_h ($size_b bytes)"
if [ "$test" = 1 ]; then
  echo "smoke test radiofind demo ($demo_args): $demo_s s"
  echo "smoke test stimela doc + run simulate-detect.yml (size 384): $stimela_s s"
fi
