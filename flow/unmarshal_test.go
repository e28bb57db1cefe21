package flow

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestRecordJSONRoundTrip sets every field of a Record to a distinct value
// and checks that UnmarshalJSON gives back what MarshalJSON wrote: a field
// added to the wire shape without its way back fails here.
func TestRecordJSONRoundTrip(t *testing.T) {
	var in Record
	v := reflect.ValueOf(&in).Elem()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		n := uint64(i + 1)
		switch f.Interface().(type) {
		case netip.AddrPort:
			f.Set(reflect.ValueOf(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(n)}), uint16(1000+n))))
		case time.Time:
			f.Set(reflect.ValueOf(start.Add(time.Duration(n) * time.Second)))
		case time.Duration:
			f.SetInt(int64(n) * int64(time.Millisecond))
		case Direction:
			f.Set(reflect.ValueOf(DirServer))
		case string:
			f.SetString("s" + string(rune('a'+i)))
		case bool:
			f.SetBool(true)
		default:
			switch f.Kind() {
			case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				f.SetUint(n)
			default:
				t.Fatalf("field %s: type %s not handled by this test", v.Type().Field(i).Name, f.Type())
			}
		}
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Record
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip differs:\n in %+v\nout %+v", in, out)
	}
}

func TestRecordUnmarshalErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"local_addr":"x"}`, "local_addr"},
		{`{"remote_addr":"1.2.3"}`, "remote_addr"},
		{`{"direction":"sideways"}`, "direction"},
	} {
		var r Record
		err := json.Unmarshal([]byte(tc.in), &r)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error naming %s", tc.in, err, tc.want)
		}
	}
}
