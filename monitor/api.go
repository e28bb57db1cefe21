package monitor

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/netsight/netsight/monitor/topology"
)

// The routes Handler serves (the agent mounts each on its server).
const (
	MonitorsPattern = "GET /api/v1/monitors"
	TopPattern      = "GET /api/v1/monitors/{name}/top"
	InsightsPattern = "GET /api/v1/insights"
)

// Summary is one monitor in GET /api/v1/monitors.
type Summary struct {
	Name            string         `json:"name"`
	Local           map[string]any `json:"local"`
	Remote          map[string]any `json:"remote"`
	WindowSeconds   float64        `json:"window_seconds"`
	Connections     uint64         `json:"connections"`
	BytesSent       uint64         `json:"bytes_sent"`
	BytesReceived   uint64         `json:"bytes_received"`
	Retransmits     uint64         `json:"retransmits"`
	RTOs            uint64         `json:"rtos"`
	ConnectFailures uint64         `json:"connect_failures"`
	RTTP50          float64        `json:"rtt_p50_seconds"`
	HandshakeP50    float64        `json:"handshake_p50_seconds"`
	// Slots are the last 5 minutes in 10 s slots, oldest first, for
	// sparklines.
	Slots SlotSeries `json:"slots"`
}

// SlotSeries are per-slot values, oldest first.
type SlotSeries struct {
	Start       time.Time `json:"start"`
	StepSeconds float64   `json:"step_seconds"`
	Bytes       []uint64  `json:"bytes"`
	Retransmits []uint64  `json:"retransmits"`
	RTTP50      []float64 `json:"rtt_p50_seconds"`
}

// Summaries returns every monitor ("all" first) over the window ending at
// now, with its 10 s slots of the last 5 minutes.
func (e *Engine) Summaries(now time.Time) []Summary {
	e.mu.Lock()
	defer e.mu.Unlock()
	from, to := span(now, e.cfg.Window, fineWidth)
	sfrom := to - FineSlots + 1
	out := make([]Summary, 0, len(e.scopes))
	for _, s := range e.scopes {
		var a acc
		s.fine.each(from, to, func(x *acc) { a.merge(x) })
		sum := Summary{Name: s.name, Local: specLocal(&s.spec), Remote: specRemote(&s.spec),
			WindowSeconds: float64((to - from + 1) * fineWidth), Connections: connections(s.open, &a),
			BytesSent: a.bytesSent, BytesReceived: a.bytesRecv, Retransmits: a.retrans, RTOs: a.rtos,
			ConnectFailures: a.refused + a.timeout + a.reset,
			RTTP50:          a.rtt.quantile(0.5), HandshakeP50: a.hs.quantile(0.5),
			Slots: SlotSeries{Start: time.Unix(sfrom*fineWidth, 0).UTC(), StepSeconds: FineSlot.Seconds(),
				Bytes: make([]uint64, FineSlots), Retransmits: make([]uint64, FineSlots), RTTP50: make([]float64, FineSlots)}}
		for i := range s.fine.slots {
			sl := &s.fine.slots[i]
			if j := sl.idx - sfrom; j >= 0 && j < FineSlots {
				sum.Slots.Bytes[j] = sl.v.bytesSent + sl.v.bytesRecv
				sum.Slots.Retransmits[j] = sl.v.retrans
				sum.Slots.RTTP50[j] = sl.v.rtt.quantile(0.5)
			}
		}
		out = append(out, sum)
	}
	return out
}

func specLocal(s *Spec) map[string]any {
	return map[string]any{"networks": nonNil(s.LocalNets), "cidrs": prefixes(s.LocalCIDRs)}
}

func specRemote(s *Spec) map[string]any {
	ports := s.RemotePorts
	if ports == nil {
		ports = []uint16{}
	}
	return map[string]any{"networks": nonNil(s.RemoteNets), "cidrs": prefixes(s.RemoteCIDRs),
		"categories": nonNil(s.RemoteCats), "ports": ports}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func prefixes(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// Handler serves the monitors API over e.
func Handler(e *Engine) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(MonitorsPattern, func(w http.ResponseWriter, _ *http.Request) {
		now := time.Now()
		writeJSON(w, http.StatusOK, map[string]any{
			"monitors":       e.Summaries(now),
			"topology":       e.res.Statuses(),
			"groups":         e.Groups(),
			"groups_evicted": e.Evicted(),
			"max_groups":     e.maxGroups(),
		})
	})
	mux.HandleFunc(TopPattern, func(w http.ResponseWriter, r *http.Request) {
		q, err := parseTop(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		q.Monitor = r.PathValue("name")
		rows, err := e.Top(q, time.Now())
		switch {
		case errors.Is(err, ErrNoMonitor):
			writeError(w, http.StatusNotFound, err)
		case err != nil:
			writeError(w, http.StatusBadRequest, err)
		default:
			writeJSON(w, http.StatusOK, map[string]any{"rows": rows})
		}
	})
	mux.HandleFunc(InsightsPattern, func(w http.ResponseWriter, r *http.Request) {
		q, err := parseTop(r)
		if err == nil {
			q.Category = r.URL.Query().Get("category")
			if q.Metric == "" {
				q.Metric = "bytes"
			}
			err = q.Normalize()
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		now := time.Now()
		rows, err := e.Top(q, now)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"rows": rows, "categories": e.Categories(q.Window, now),
			"window_seconds": q.Window.Seconds(), "category_names": topology.Categories})
	})
	return mux
}

func (e *Engine) maxGroups() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.MaxGroups
}

func parseTop(r *http.Request) (TopQuery, error) {
	v := r.URL.Query()
	q := TopQuery{Metric: v.Get("metric"), GroupBy: v.Get("group_by")}
	if s := v.Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return q, errors.New("window: want a duration such as 5m")
		}
		q.Window = d
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, errors.New("limit: want a number from 1 to 1000")
		}
		q.Limit = n
	}
	return q, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
