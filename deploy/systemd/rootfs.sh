#!/bin/sh
# Builds the minimal Debian root file system (systemd as init) that
# deploy/systemd/nspawn_test.go boots with systemd-nspawn to run
# netsight.service under a real systemd. .ci/run calls it once per machine;
# the test itself never downloads anything.
#
#   deploy/systemd/rootfs.sh [DIR]     (default /var/cache/netsight/systemd-rootfs)
#
# debootstrap fetches the packages from the host's Debian apt mirror (the
# first URIs: line of /etc/apt/sources.list.d/debian.sources, else
# deb.debian.org) for the host's release. Idempotent: a finished tree has
# DIR/.netsight-rootfs-ok and is left alone.
set -eu
dir=${1:-/var/cache/netsight/systemd-rootfs}
[ -f "$dir/.netsight-rootfs-ok" ] && exit 0
. /etc/os-release
suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}
rm -rf "$dir.tmp"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase --include=systemd,systemd-sysv "$suite" "$dir.tmp" "$mirror"
touch "$dir.tmp/.netsight-rootfs-ok"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
