package all

import _ "github.com/netsight/netsight/collector/netstat" // TCP/IP stack counters (/proc/net/netstat, snmp)
