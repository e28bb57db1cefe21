package all

import _ "github.com/netsight/netsight/collector/nftables"
