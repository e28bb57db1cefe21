package all

import _ "github.com/netsight/netsight/collector/capture" // live AF_PACKET capture with TCP analysis
