package agent

import "github.com/netsight/netsight/config"

// loadConfig reads the config the options name (a ConfigOptional file that
// does not exist means the defaults) and picks the data directory. note
// says why the data directory differs from the configured one.
func (a *Agent) loadConfig() (cfg *config.Config, note string, err error) {
	if a.opts.ConfigOptional {
		var found bool
		cfg, found, err = config.LoadOptionalFile(a.opts.ConfigFile, a.opts.Overrides)
		a.configFound = found
	} else {
		cfg, err = config.LoadFile(a.opts.ConfigFile, a.opts.Overrides)
		a.configFound = a.opts.ConfigFile != ""
	}
	if err != nil {
		return nil, "", err
	}
	cfg.DataDir, note = userDataDir(cfg.DataDir, a.opts.Overrides)
	return cfg, note, nil
}

// configSource names the config in force for the log.
func (a *Agent) configSource() string {
	switch {
	case a.configFound:
		return a.opts.ConfigFile
	case a.opts.ConfigFile != "":
		return "defaults (" + a.opts.ConfigFile + " does not exist)"
	default:
		return "defaults"
	}
}
