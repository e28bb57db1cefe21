package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
)

// Decode decodes node into out (a pointer) strictly: every mapping key must
// name a field of the target struct, and every scalar must parse as its
// field's type. Errors are FieldErrors naming the path below prefix, with
// the YAML line. Fields absent from node keep the value out already holds,
// so callers fill defaults first and decode over them.
func Decode(node *yaml.Node, out any, prefix string) error {
	if node == nil || node.Kind == 0 {
		return nil
	}
	if node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			return nil
		}
		node = node.Content[0]
	}
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("config: decode target must be a non-nil pointer, got %T", out)
	}
	return decodeValue(node, v.Elem(), prefix)
}

func decodeValue(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Tag == "!!null" {
		return nil // keep defaults
	}
	// Types that decode themselves (and durations) are leaves.
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		return leaf(n, v, path)
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decodeValue(n, v.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return lineErr(n, path, "must be a mapping, not %s", kindName(n))
		}
		fields := structFields(v.Type())
		seen := map[string]bool{}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			idx, ok := fields[k.Value]
			p := joinPath(path, k.Value)
			if !ok {
				errs = append(errs, lineErr(k, p, "unknown field (known: %s)", knownList(fields)))
				continue
			}
			if seen[k.Value] {
				errs = append(errs, lineErr(k, p, "duplicate field"))
				continue
			}
			seen[k.Value] = true
			if err := decodeValue(val, v.FieldByIndex(idx), p); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if v.Type().Elem().Kind() == reflect.Uint8 {
				return leaf(n, v, path)
			}
			return lineErr(n, path, "must be a list, not %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		var errs []error
		for i, item := range n.Content {
			// Each element starts from the zero value; element defaults are
			// filled by the owner's Validate/defaults pass.
			if err := decodeValue(item, s.Index(i), Index(path, i)); err != nil {
				errs = append(errs, err)
			}
		}
		v.Set(s)
		return errors.Join(errs...)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return lineErr(n, path, "must be a mapping, not %s", kindName(n))
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			kv := reflect.New(v.Type().Key()).Elem()
			if err := leaf(k, kv, path); err != nil {
				errs = append(errs, err)
				continue
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			if old := v.MapIndex(kv); old.IsValid() {
				ev.Set(old)
			}
			if err := decodeValue(val, ev, joinPath(path, k.Value)); err != nil {
				errs = append(errs, err)
				continue
			}
			v.SetMapIndex(kv, ev)
		}
		return errors.Join(errs...)
	case reflect.Interface:
		return leaf(n, v, path)
	default:
		if n.Kind != yaml.ScalarNode {
			return lineErr(n, path, "must be a scalar, not %s", kindName(n))
		}
		return leaf(n, v, path)
	}
}

func leaf(n *yaml.Node, v reflect.Value, path string) error {
	tmp := reflect.New(v.Type())
	// Decode over the current value: a custom unmarshaler (Collectors)
	// fills what it can in place, so one bad field does not reset its
	// siblings to defaults and hide their range errors.
	tmp.Elem().Set(v)
	if err := n.Decode(tmp.Interface()); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return err // a custom unmarshaler already named the path
		}
		msg := err.Error()
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
			// yaml.v3 prefixes "line N: "; we add our own.
			if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
				msg = msg[i+2:]
			}
		}
		if v.Type() == durationType {
			msg = fmt.Sprintf("invalid duration %q (use e.g. 500ms, 15s, 1m)", n.Value)
		}
		return lineErr(n, path, "%s", msg)
	}
	v.Set(tmp.Elem())
	return nil
}

func lineErr(n *yaml.Node, path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		msg = fmt.Sprintf("%s (line %d)", msg, n.Line)
	}
	return &FieldError{Path: path, Msg: msg}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// structFields maps yaml keys to field indexes, following ",inline" embeds.
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	var walk func(t reflect.Type, base []int)
	walk = func(t reflect.Type, base []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), base...), i)
			if strings.Contains(opts, "inline") {
				// Only value embeds: a nil pointer embed could not be set.
				walk(f.Type, idx)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			out[name] = idx
		}
	}
	walk(t, nil)
	return out
}

func knownList(fields map[string][]int) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
