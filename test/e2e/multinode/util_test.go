package multinode

import (
	"encoding/base64"
	"net"
	"time"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func netDial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
