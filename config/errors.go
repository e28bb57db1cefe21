package config

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is a configuration error tied to a field path such as
// "server.listen" or "collectors.probe.targets[2].port".
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errorf returns a FieldError for path.
func Errorf(path, format string, args ...any) error {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Within prefixes every FieldError path inside err (which may be an
// errors.Join of several) with prefix. Other errors are wrapped as a
// FieldError at prefix.
func Within(prefix string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Within(prefix, e))
		}
		return errors.Join(out...)
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Path: joinPath(prefix, fe.Path), Msg: fe.Msg}
	}
	return &FieldError{Path: prefix, Msg: err.Error()}
}

func joinPath(prefix, p string) string {
	switch {
	case prefix == "":
		return p
	case p == "":
		return prefix
	case strings.HasPrefix(p, "["):
		return prefix + p
	default:
		return prefix + "." + p
	}
}

// Index formats a slice element path: Index("targets", 2) == "targets[2]".
func Index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
