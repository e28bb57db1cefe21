package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// DefaultPath is the config file `netsight run` reads when --config is not
// given. It may be absent: that means the defaults.
const DefaultPath = "/etc/netsight/netsight.yaml"

// LoadOptionalFile is LoadFile for a path that may be absent (DefaultPath
// when no --config was given): a missing file means the defaults plus
// overrides, and found is false. Any other read error is still an error.
func LoadOptionalFile(path string, overrides map[string]string) (cfg *Config, found bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		cfg, err := Load(nil, overrides)
		return cfg, false, err
	} else if err != nil {
		return nil, false, fmt.Errorf("read config: %w", err)
	}
	cfg, err = LoadFile(path, overrides)
	return cfg, true, err
}
