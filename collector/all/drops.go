package all

import _ "github.com/netsight/netsight/collector/drops" // kernel drops by reason (tp_btf/kfree_skb)
