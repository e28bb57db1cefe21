package receiver

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

// CollectdProc is a running collectd (collectd-core) with the network
// plugin listening on 127.0.0.1 and the csv plugin writing to CSVDir.
type CollectdProc struct {
	Addr   string // 127.0.0.1:port of the network plugin
	CSVDir string
	Dir    string
	cmd    *exec.Cmd
	logs   *lockedWriter
	buf    *strings.Builder
}

// CollectdOptions configure Collectd.
type CollectdOptions struct {
	// SecurityLevel of the network plugin's Listen block: "" (None) or
	// "Sign"/"Encrypt" with Username and Password in its AuthFile.
	SecurityLevel, Username, Password string
	// Extra is appended to the configuration (e.g. an Exec plugin block).
	Extra string
	// Interval is collectd's Interval (default 1s).
	Interval time.Duration
	// Wrap prefixes the command line, e.g. ip netns exec <name>.
	Wrap []string
}

// Collectd starts `collectd -f` with a configuration in a temporary dir.
func Collectd(t testing.TB, o CollectdOptions) *CollectdProc {
	t.Helper()
	bin := testlab.RequireBinary(t, "collectd")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freeUDPPort(t)
	p := &CollectdProc{Addr: fmt.Sprintf("127.0.0.1:%d", port), CSVDir: filepath.Join(dir, "csv"), Dir: dir}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	listen := fmt.Sprintf("  <Listen \"127.0.0.1\" \"%d\">\n", port)
	if o.SecurityLevel != "" {
		auth := filepath.Join(dir, "auth")
		if err := os.WriteFile(auth, []byte(o.Username+": "+o.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		listen += fmt.Sprintf("    SecurityLevel %q\n    AuthFile %q\n", o.SecurityLevel, auth)
	}
	listen += "  </Listen>\n"
	cfg := fmt.Sprintf(`Hostname "collectd-lab"
FQDNLookup false
BaseDir %q
PIDFile %q
TypesDB "/usr/share/collectd/types.db"
Interval %g
# One write thread: with several, two samples of one series in a burst can
# reach the value cache out of order and the older is dropped ("uc_update:
# Value too old"), a collectd property a catch-up burst would trip over.
WriteThreads 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File STDOUT
  Timestamp true
</Plugin>
LoadPlugin network
<Plugin network>
%s</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir %q
  StoreRates false
</Plugin>
%s
`, dir, filepath.Join(dir, "collectd.pid"), o.Interval.Seconds(), listen, p.CSVDir, o.Extra)
	conf := filepath.Join(dir, "collectd.conf")
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.buf = &strings.Builder{}
	p.logs = &lockedWriter{w: p.buf}
	argv := append(append([]string(nil), o.Wrap...), bin, "-f", "-C", conf)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if strings.Contains(p.Logs(), "Initialization complete") {
			return p
		}
	}
	t.Fatalf("collectd did not start:\n%s", p.Logs())
	return nil
}

// Logs is collectd's log.
func (p *CollectdProc) Logs() string {
	p.logs.mu.Lock()
	defer p.logs.mu.Unlock()
	return p.buf.String()
}

var portMu sync.Mutex

func freeUDPPort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	c, err := netListenUDP()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*netUDPAddr).Port
}

// CSVPoint is one row of a csv plugin file.
type CSVPoint struct {
	T int64 // ms
	V float64
}

// CSV reads every csv file of host: identifier ("plugin-inst/type-inst") -> rows.
func (p *CollectdProc) CSV(host string) (map[string][]CSVPoint, error) {
	out := map[string][]CSVPoint{}
	root := filepath.Join(p.CSVDir, host)
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		// strip the -YYYY-MM-DD date suffix
		id := rel[:len(rel)-len("-2006-01-02")]
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "epoch") {
				continue
			}
			ts, v, ok := strings.Cut(line, ",")
			if !ok {
				return fmt.Errorf("%s: bad line %q", path, line)
			}
			tf, err := strconv.ParseFloat(ts, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			vf, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			out[id] = append(out[id], CSVPoint{T: int64(math.Round(tf * 1000)), V: vf})
		}
		return sc.Err()
	})
	if os.IsNotExist(err) {
		return out, nil
	}
	return out, err
}
