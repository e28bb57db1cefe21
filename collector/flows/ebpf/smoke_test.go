package ebpf

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/testlab"
)

func TestSmokeLoopback(t *testing.T) {
	testlab.RequireRoot(t)
	tr, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan flow.Record, 100)
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx, func(r flow.Record) { got <- r }) }()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write(make([]byte, 100000))
	time.Sleep(50 * time.Millisecond)
	tr.Active(func(r flow.Record) { t.Logf("active %+v", r) })
	c.Close()
	t.Log("closing", time.Now())
	timeout := time.After(3 * time.Second)
	for n := 0; n < 2; {
		select {
		case r := <-got:
			t.Logf("closed %+v", r)
			n++
		case <-timeout:
			t.Fatal("timeout")
		}
	}
	s, _ := tr.Stats()
	t.Logf("stats %+v", s)
	st:=time.Now()
	cancel()
	<-done
	t.Log("stop", time.Since(st))
}
