package receiver

import "net"

type netUDPAddr = net.UDPAddr

func netListenUDP() (*net.UDPConn, error) {
	return net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
}
