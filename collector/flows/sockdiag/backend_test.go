package sockdiag

import (
	"os"
	"testing"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/kernel"
)

func TestBackendNetNSOwn(t *testing.T) {
	self := flow.NetNSInode("/proc/self/ns/net")
	if self == 0 {
		t.Fatal("cannot stat /proc/self/ns/net")
	}
	if got := New(Options{}).NetNS(); got != self {
		t.Errorf("own namespace inode %d, want %d", got, self)
	}
	// An explicit descriptor is looked up with fstat.
	f, err := os.Open("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := New(Options{NetNS: int(f.Fd())}).NetNS(); got != self {
		t.Errorf("namespace inode via fd %d, want %d", got, self)
	}
	// fill stamps it on every record.
	b := New(Options{})
	k := &known{}
	b.fill(k, &kernel.Socket{Cookie: 1, State: 1, HasInfo: true}, nil)
	if k.rec.NetNS != self {
		t.Errorf("record netns %d, want %d", k.rec.NetNS, self)
	}
}
