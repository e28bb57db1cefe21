package remotewrite_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/netsight/netsight/internal/receiver"
)

// v2Store decodes remote write 2.0 requests that client_golang's reference
// write handler accepted (content type negotiation, snappy) into Samples.
type v2Store struct {
	mu  sync.Mutex
	got receiver.Samples
}

func (s *v2Store) Store(r *http.Request, mt remoteapi.WriteMessageType) (*remoteapi.WriteResponse, error) {
	resp := remoteapi.NewWriteResponse()
	if mt != remoteapi.WriteV2MessageType {
		resp.SetStatusCode(http.StatusUnsupportedMediaType)
		return resp, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return resp, err
	}
	var req writev2.Request
	if err := req.Unmarshal(body); err != nil {
		resp.SetStatusCode(http.StatusBadRequest)
		return resp, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ts := range req.Timeseries {
		m := map[string]string{}
		for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
			m[req.Symbols[ts.LabelsRefs[i]]] = req.Symbols[ts.LabelsRefs[i+1]]
		}
		name := receiver.SeriesString(m)
		for _, p := range ts.Samples {
			s.got[receiver.Key{Series: name, T: p.Timestamp}] = p.Value
		}
		resp.Samples += len(ts.Samples)
	}
	return resp, nil
}

// TestRemoteWriteV2 sends version 2 (io.prometheus.write.v2.Request with a
// symbol table) to client_golang's reference remote-write handler accepting
// only 2.0: every sample arrives bit for bit. (Debian's Prometheus 2.42 and
// VictoriaMetrics 1.79 predate remote write 2.0.)
func TestRemoteWriteV2(t *testing.T) {
	st := &v2Store{got: receiver.Samples{}}
	srv := httptest.NewServer(remoteapi.NewWriteHandler(st, remoteapi.MessageTypes{remoteapi.WriteV2MessageType}))
	defer srv.Close()
	s, from, to := backfill(t, srv.URL, 2, fullValue)
	want := s.Local(t, "rwtest_.*", from, to, nil, false)
	st.mu.Lock()
	defer st.mu.Unlock()
	for k := range st.got { // the round may also have sent the sample at to+1s
		if k.T > to {
			delete(st.got, k)
		}
	}
	if diff := receiver.Diff(st.got, want); diff != "" {
		t.Fatal(diff)
	}
}
