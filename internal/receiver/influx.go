package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// InfluxDB starts Debian's influxd (1.6) on 127.0.0.1 with every directory
// in a temporary one, reporting and the _internal monitor off.
func InfluxDB(t testing.TB) *Proc {
	rpc := FreePort(t)
	return newProc(t, "influxd", "/ping", func(addr, dir string) []string {
		cfg := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = %q
  log-enabled = false
`, rpc, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), addr)
		path := filepath.Join(dir, "influxdb.conf")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"run", "-config", path}
	})
}

// InfluxQuery runs an InfluxQL statement (epoch=ms) and returns the series.
func InfluxQuery(ctx context.Context, p *Proc, db, q string) ([]InfluxSeries, error) {
	v := url.Values{"q": {q}, "epoch": {"ms"}}
	if db != "" {
		v.Set("db", db)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL("/query"), strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Results []struct {
			Error  string         `json:"error"`
			Series []InfluxSeries `json:"series"`
		} `json:"results"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	var out []InfluxSeries
	for _, res := range r.Results {
		if res.Error != "" {
			return nil, fmt.Errorf("query %q: %s", q, res.Error)
		}
		out = append(out, res.Series...)
	}
	return out, nil
}

// InfluxSeries is one series of an InfluxQL result.
type InfluxSeries struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// InfluxSamples reads `SELECT value FROM /re/ GROUP BY *` as Samples (the
// measurement is the metric name, tags the labels).
func InfluxSamples(ctx context.Context, p *Proc, db, measurementRE string) (Samples, error) {
	ss, err := InfluxQuery(ctx, p, db, fmt.Sprintf(`SELECT "value" FROM /%s/ GROUP BY *`, measurementRE))
	if err != nil {
		return nil, err
	}
	out := Samples{}
	for _, s := range ss {
		m := map[string]string{"__name__": s.Name}
		for k, v := range s.Tags {
			if v != "" {
				m[k] = v
			}
		}
		name := SeriesString(m)
		for _, row := range s.Values {
			ts, ok := row[0].(float64)
			if !ok {
				return nil, fmt.Errorf("time %v", row[0])
			}
			v, err := number(row[1])
			if err != nil {
				return nil, err
			}
			out[Key{name, int64(ts)}] = v
		}
	}
	return out, nil
}

var _ = strconv.Itoa
