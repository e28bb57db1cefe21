package sockets

import (
	"strings"
	"testing"
)

func TestConfigBackendSpelling(t *testing.T) {
	for _, tc := range []struct{ backend, wantErr string }{
		{"auto", ""},
		{"bpf_iter", ""},
		{"sockdiag", ""},
		{"sock_diag", "backend: sock_diag is now spelled sockdiag"},
		{"netlink", `must be auto, bpf_iter or sockdiag, got "netlink"`},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			c := DefaultConfig()
			c.Backend = tc.backend
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
