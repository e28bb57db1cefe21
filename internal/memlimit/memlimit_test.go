package memlimit

import (
	"errors"
	"math"
	"testing"

	aml "github.com/KimMachineGun/automemlimit/memlimit"
)

func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		name       string
		envVal     string
		configured int64
		cgroup     uint64
		cgErr      error
		want       Choice
	}{
		{name: "cgroup 512MiB", cgroup: 512 << 20, want: Choice{Limit: 456340275, Source: FromCgroup, Cgroup: 512 << 20}},
		{name: "config wins over cgroup", configured: 300 << 20, cgroup: 512 << 20, want: Choice{Limit: 300 << 20, Source: FromConfig, Cgroup: 512 << 20}},
		{name: "env wins over config", envVal: "200MiB", configured: 300 << 20, cgroup: 512 << 20, want: Choice{Limit: 123, Source: FromEnv, Cgroup: 512 << 20}},
		{name: "no cgroup limit", cgErr: aml.ErrNoLimit, want: Choice{Limit: math.MaxInt64, Source: NoLimit}},
		{name: "cgroup unreadable", cgErr: errors.New("no cgroup"), want: Choice{Limit: math.MaxInt64, Source: NoLimit}},
		{name: "config without cgroup", configured: 1 << 30, cgErr: aml.ErrNoLimit, want: Choice{Limit: 1 << 30, Source: FromConfig}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := int64(math.MaxInt64)
			if tc.envVal != "" {
				cur = 123 // what the runtime parsed from GOMEMLIMIT
			}
			var sets []int64
			e := env{
				lookup: func(k string) (string, bool) { return tc.envVal, k == "GOMEMLIMIT" && tc.envVal != "" },
				cgroup: func() (uint64, error) { return tc.cgroup, tc.cgErr },
				set: func(v int64) int64 {
					prev := cur
					if v >= 0 {
						cur = v
						sets = append(sets, v)
					}
					return prev
				},
			}
			got := choose(e, tc.configured)
			if got != tc.want {
				t.Errorf("choose = %+v, want %+v", got, tc.want)
			}
			if cur != tc.want.Limit {
				t.Errorf("runtime limit %d, want %d (sets %v)", cur, tc.want.Limit, sets)
			}
		})
	}
}
