package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var lineSuffix = regexp.MustCompile(`\(line (\d+)\)$`)

// withLines flattens err (errors.Join trees), adds "(line N)" to every
// FieldError whose path names a node of doc that came from the file (flag
// overrides have no line). The order stays: decode errors, then
// validation errors in field order.
func withLines(doc *yaml.Node, err error) error {
	if err == nil {
		return nil
	}
	var flat []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		flat = append(flat, e)
	}
	walk(err)
	line := func(e error) int {
		var fe *FieldError
		if !errors.As(e, &fe) {
			return 0
		}
		if m := lineSuffix.FindStringSubmatch(fe.Msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
		return 0
	}
	for i, e := range flat {
		var fe *FieldError
		if !errors.As(e, &fe) || line(e) > 0 || fe.Path == "" {
			continue
		}
		if n := find(doc, fe.Path); n != nil && n.Line > 0 {
			flat[i] = &FieldError{Path: fe.Path, Msg: fmt.Sprintf("%s (line %d)", fe.Msg, n.Line)}
		}
	}
	return errors.Join(flat...)
}

// find returns the value node at a field path such as
// "collectors.probe.targets[2].port", or nil.
func find(n *yaml.Node, path string) *yaml.Node {
	for _, part := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
		for rest != "" && n != nil {
			idx, tail, _ := strings.Cut(rest, "]")
			i, err := strconv.Atoi(idx)
			if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
			rest = strings.TrimPrefix(tail, "[")
		}
	}
	return n
}

// yaml.v3 reports parser (not scanner) errors with a 0-based line: "line
// 1" for a problem on line 2, no line at all on line 1.
var (
	yamlLineErr    = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)
	parserProblems = map[string]bool{
		"did not find expected ',' or ']'":       true,
		"did not find expected ',' or '}'":       true,
		"did not find expected '-' indicator":    true,
		"did not find expected <document start>": true,
		"did not find expected key":              true,
		"did not find expected node content":     true,
		"found duplicate %TAG directive":         true,
		"found duplicate %YAML directive":        true,
		"found incompatible YAML document":       true,
		"found undefined tag handle":             true,
	}
)

// fixYAMLLine corrects the line of a yaml.v3 parser error.
func fixYAMLLine(err error) error {
	m := yamlLineErr.FindStringSubmatch(err.Error())
	if m == nil || !parserProblems[m[2]] {
		return err
	}
	n, _ := strconv.Atoi(m[1]) // "" (no line) is 0: line 1
	return fmt.Errorf("yaml: line %d: %s", n+1, m[2])
}
