#!/bin/sh
# netsight post-remove. deb purge (and rpm erase, $1 = 0) deletes the
# stored history in /var/lib/netsight. The netsight user and group are kept,
# as Debian policy advises for system users (files it owned may remain
# elsewhere); `userdel netsight` removes them (docs/install.md).
set -e
case "$1" in
  purge|0)
    rm -rf /var/lib/netsight
    ;;
esac
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
