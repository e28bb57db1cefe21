#!/bin/sh
# netsight post-install: the system user the unit runs as, its state
# directory, and (with systemd running) the unit enabled and (re)started.
set -e
if ! getent group netsight >/dev/null 2>&1; then
  groupadd --system netsight
fi
if ! getent passwd netsight >/dev/null 2>&1; then
  useradd --system --gid netsight --no-create-home --home-dir /var/lib/netsight \
    --shell /usr/sbin/nologin --comment "netsight network health agent" netsight
fi
install -d -o netsight -g netsight -m 0750 /var/lib/netsight
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
  systemctl enable netsight.service >/dev/null 2>&1 || true
  systemctl restart netsight.service >/dev/null 2>&1 || true
fi
exit 0
