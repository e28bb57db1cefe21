package all

import _ "github.com/netsight/netsight/collector/flows" // flows: per-connection TCP health (eBPF / sock_diag)
