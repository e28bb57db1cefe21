#!/bin/sh
# netsight pre-remove: stop and disable the unit on removal (deb: remove,
# rpm: $1 = 0), not on upgrade.
set -e
case "$1" in
  remove|0)
    if [ -d /run/systemd/system ]; then
      systemctl disable --now netsight.service >/dev/null 2>&1 || true
    fi
    ;;
esac
exit 0
