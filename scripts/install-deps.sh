#!/usr/bin/env bash
# Installs everything kelp's tests and demo need on a Debian 12 machine:
# QEMU, busybox, kernel build tools, and one consistent Debian kernel triple
# (linux-image-<abi>-amd64, linux-headers-<abi>-amd64, linux-source-6.1, all
# of the same Debian version).
#
# KELP_KERNEL_VERSION=6.1.192-2  pin the Debian version of the triple
#                                (default: the newest version for which all
#                                three packages exist)
# KELP_DEPS_REFRESH=1            re-resolve even when a consistent triple is
#                                already installed
# KELP_TEST_KERNEL_13=<release>  the Debian 13 kernel to prepare (default: the
#                                newest 6.12 release whose image and source
#                                packages are in trixie)
# KELP_DEPS_DEB13=0              skip the Debian 13 build root
#
# Besides the host's packages it prepares, in kelp's cache and never on the
# host: the cloud flavour of the Debian 12 test kernel (its image package
# unpacked into the test cache; its headers are installed like the generic
# ones), and the Debian 13 build root (debootstrap trixie, see kelp prepare)
# with the 6.12 generic and cloud kernels' image, headers and source.
#
# Idempotent: when the tools and a consistent triple are present it only
# verifies them and exits within a second.
set -euo pipefail

tools=(qemu-system-x86 qemu-utils busybox-static e2fsprogs cpio reprepro xz-utils make gcc bison lintian
       flex libelf-dev libssl-dev bc dwarves kmod binutils openssl rpm debootstrap dnf createrepo-c)

log() { printf 'install-deps: %s\n' "$*" >&2; }

kelp=${KELP:-$(dirname "$0")/../bin/kelp}
cache=${KELP_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kelp/test}

# cloud61 ABI VERSION: the cloud flavour of the Debian 12 test kernel, its
# headers on the host, its image unpacked into the test cache.
cloud61() {
  local rel=$1-cloud-amd64 ver=$2 dir
  dir=$cache/images/$rel
  if [ "$(installed_version "linux-headers-$rel")" != "$ver" ]; then
    log "installing linux-headers-$rel=$ver"
    # linux-source-6.1 named with its version: apt otherwise upgrades a
    # pinned older one (KELP_KERNEL_VERSION) while installing the headers.
    apt-get install -y -qq --no-install-recommends --allow-downgrades "linux-headers-$rel=$ver" "linux-source-6.1=$ver" >&2
  fi
  [ -f "$dir/lib/modules/$rel/modules.dep" ] && [ -f "$dir/.version" ] && [ "$(cat "$dir/.version")" = "$ver" ] && return 0
  log "unpacking linux-image-$rel=$ver into $dir"
  rm -rf "$dir" "$dir.debs"; mkdir -p "$dir.debs"
  (cd "$dir.debs" && apt-get download -qq "linux-image-$rel=$ver" >&2)
  dpkg-deb -x "$dir.debs"/linux-image-*.deb "$dir"
  depmod -b "$dir" "$rel"
  rm -rf "$dir.debs"
  echo "$ver" > "$dir/.version"
}

# deb13: the Debian 13 build root with the 6.12 generic and cloud kernels.
deb13() {
  [ "${KELP_DEPS_DEB13:-1}" = 0 ] && return 0
  local rel=${KELP_TEST_KERNEL_13:-} root v
  root=$("$kelp" prepare --root-of trixie)
  if [ -z "$rel" ]; then
    # A new root has no var/lib/kelp yet (ls fails, and with it the
    # pipeline under pipefail).
    rel=$( (ls "$root"/var/lib/kelp/ 2>/dev/null || true) | sed -n 's/^kernel-\(6\.12\.[0-9]*+deb13-amd64\)$/\1/p' | sort -V | tail -n1)
  fi
  if [ -z "$rel" ]; then
    chroot "$root" apt-get update -qq >&2
    for v in $(chroot "$root" apt-cache madison linux-source-6.12 | awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -Vr | uniq); do
      rel="${v%-*}+deb13-amd64"
      chroot "$root" apt-cache madison "linux-image-$rel" | grep -q . && \
        chroot "$root" apt-cache madison "linux-image-${rel%-amd64}-cloud-amd64" | grep -q . && break
      rel=
    done
  fi
  [ -n "$rel" ] || { log "no Debian 13 6.12 kernel with its source in trixie"; exit 1; }
  "$kelp" prepare --packages-only --kernel "$rel" >&2
  "$kelp" prepare --packages-only --kernel "${rel%-amd64}-cloud-amd64" >&2
  log "ok: Debian 13 kernels $rel and ${rel%-amd64}-cloud-amd64 in $root"
}

extras() {
  cloud61 "${1%-amd64}" "$2"
  deb13
}

if [ "$(id -u)" -ne 0 ]; then
  log "must run as root (apt-get install)"; exit 1
fi
export DEBIAN_FRONTEND=noninteractive

missing_tools() {
  local p out=()
  for p in "${tools[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  echo "${out[@]:-}"
}

installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null | grep . || true; }

# installed_triple prints "<abi> <version>" of a consistent installed triple,
# newest abi first, or nothing.
installed_triple() {
  local src img abi
  src=$(installed_version linux-source-6.1)
  [ -n "$src" ] || return 0
  for img in $(dpkg-query -W -f='${Package}\n' 'linux-image-6.1.0-*-amd64' 2>/dev/null | sort -t- -k5,5nr); do
    abi=${img#linux-image-}
    [ "$(installed_version "$img")" = "$src" ] || continue
    [ "$(installed_version "linux-headers-$abi")" = "$src" ] || continue
    [ -f "/boot/vmlinuz-$abi" ] && [ -f /usr/src/linux-source-6.1.tar.xz ] || continue
    if [ -n "${KELP_KERNEL_VERSION:-}" ] && [ "$src" != "$KELP_KERNEL_VERSION" ]; then continue; fi
    echo "$abi $src"; return 0
  done
}

if [ -z "${KELP_DEPS_REFRESH:-}" ]; then
  t=$(installed_triple)
  if [ -n "$t" ]; then
    missing=$(missing_tools)
    if [ -n "$missing" ]; then
      log "installing $missing"
      apt-get update -qq
      # shellcheck disable=SC2086
      apt-get install -y -qq --no-install-recommends $missing >&2
    fi
    log "ok: tools present, kernel triple ${t% *} (Debian ${t#* })"
    extras "${t% *}" "${t#* }"
    exit 0
  fi
fi

log "apt-get update"
apt-get update -qq

# Candidate versions: every linux-source-6.1 version, newest first; take the
# first for which an amd64 image and headers of exactly that version exist.
pick_triple() {
  local v img abi
  local versions
  if [ -n "${KELP_KERNEL_VERSION:-}" ]; then
    versions=$KELP_KERNEL_VERSION
  else
    versions=$(apt-cache madison linux-source-6.1 | awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -Vr | uniq)
  fi
  for v in $versions; do
    for img in $(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}'); do
      apt-cache madison "$img" | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$v" || continue
      abi=${img#linux-image-}
      apt-cache madison "linux-headers-$abi" | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$v" || continue
      echo "$abi $v"; return 0
    done
  done
}

t=$(pick_triple)
if [ -z "$t" ]; then
  log "no consistent linux-image/linux-headers/linux-source-6.1 triple found${KELP_KERNEL_VERSION:+ for version $KELP_KERNEL_VERSION}"
  exit 1
fi
abi=${t% *}; ver=${t#* }
log "kernel triple: $abi (Debian $ver)"

# The kernel image's postinst hooks (initramfs, bootloader) are irrelevant
# here; the test kernel is booted from QEMU with kelp's own initramfs. A
# pinned older triple replaces a newer linux-source-6.1 (a downgrade).
apt-get install -y -qq --no-install-recommends --allow-downgrades \
  "${tools[@]}" \
  "linux-image-$abi=$ver" "linux-headers-$abi=$ver" "linux-source-6.1=$ver" >&2

t=$(installed_triple)
[ -n "$t" ] || { log "installation finished but no consistent triple is installed"; exit 1; }
log "ok: kernel triple ${t% *} (Debian ${t#* })"
extras "${t% *}" "${t#* }"
