package main

import (
	"context"
	"io"

	"github.com/netsight/netsight/agent"
	"github.com/netsight/netsight/config"
)

func init() {
	c := &command{name: "run", summary: "run the agent: collectors, /metrics, query API and dashboard", order: 0,
		usage: `Usage: netsight run [flags]

Starts the agent. Without --config it reads ` + config.DefaultPath + ` if that
exists; with no config file every collector that this host supports
starts with its defaults; one log line per collector says whether it runs and,
if not, why. Metrics are served at /metrics, the dashboard at /.

Flags override the config file. Any config field can be set with --set, using
its dotted path. SIGHUP reloads the config file; SIGINT/SIGTERM stop cleanly.`,
		examples: `  sudo netsight run
  sudo netsight run --config /etc/netsight/netsight.yaml
  sudo netsight run --listen 0.0.0.0:19977 --data-dir /var/lib/netsight
  sudo netsight run --flows.backend sockdiag --set collectors.conntrack.interval=5s`}
	c.run = func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(c, stderr)
		cfgFile := fs.String("config", "", "YAML config `file` (default "+config.DefaultPath+" if it exists, else built-in defaults)")
		listen := fs.String("listen", "", "listen `address` host:port (default 127.0.0.1:19977)")
		dataDir := fs.String("data-dir", "", "`directory` for the embedded store; created if missing (default /var/lib/netsight; unprivileged: $XDG_STATE_HOME/netsight or ~/.local/state/netsight)")
		webCfg := fs.String("web.config.file", "", "exporter-toolkit web config `file` for TLS and basic auth")
		logLevel := fs.String("log.level", "", "log `level`: debug, info, warn, error")
		logFormat := fs.String("log.format", "", "log `format`: text or json")
		backend := fs.String("flows.backend", "", "flow back end: `auto`, ebpf or sockdiag")
		var sets stringList
		fs.Var(&sets, "set", "set any config field: `path=value` (repeatable)")
		if err := parseFlags(fs, args, stdout); err != nil {
			return err
		}
		overrides, err := agent.ParseSets(sets)
		if err != nil {
			return err
		}
		for path, v := range map[string]string{
			"server.listen": *listen, "data_dir": *dataDir, "server.web_config_file": *webCfg,
			"log.level": *logLevel, "log.format": *logFormat, "collectors.flows.backend": *backend,
		} {
			if v != "" {
				overrides[path] = v
			}
		}
		opts := agent.Options{ConfigFile: *cfgFile, Overrides: overrides, LogOutput: stderr}
		if opts.ConfigFile == "" { // an explicit --config must exist; the default may not
			opts.ConfigFile, opts.ConfigOptional = config.DefaultPath, true
		}
		a, err := agent.New(opts)
		if err != nil {
			return err
		}
		return a.Run(ctx)
	}
	register(c)
}
