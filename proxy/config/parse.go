package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strings"
)

// Load reads the file at path and parses it (see Parse). Read failures are
// returned as Errors too, without a position.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: "cannot read the file: " + fsReason(err)}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, Errors{{File: path, Msg: "cannot read the file: " + fsReason(err)}}
	}
	return Parse(path, data)
}

// fsReason is the cause of a file-system error without the path (which the
// caller already prints).
func fsReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return err.Error()
}

// Parse decodes data (the contents of filename) strictly, fills defaults
// and validates the result. On any problem it returns a nil *Config and an
// Errors value listing every problem found, sorted by position; otherwise a
// valid *Config and nil. Parse never touches the file system.
func Parse(filename string, data []byte) (*Config, error) {
	root, errs := parseYAML(filename, data)
	if len(errs) > 0 {
		return nil, errs
	}
	cfg := Default()
	cfg.Source = filename
	c := &checker{
		file: filename,
		pos:  map[string]keyPos{"": {root.Line, root.Column, root.Line, root.Column}},
		bad:  map[string]bool{},
		max:  4*len(data) + 10000,
	}
	c.decode(root, reflect.ValueOf(cfg).Elem(), "")
	if !c.stop {
		c.derive(cfg) // derive.go: defaults that follow what the file set
		c.validate(cfg)
	}
	if len(c.errs) > 0 {
		return nil, c.errs.sort()
	}
	cfg.pos = c.pos
	cfg.warnings = c.warns.sort()
	return cfg, nil
}

// Warnings lists settings that are valid but risky (e.g. an upstream whose
// certificate is not verified), positioned like errors. check-config and
// serve print them; they never stop a config from loading.
func (c *Config) Warnings() Errors { return c.warnings }

// Position returns where the value at a dotted path (as in Error.Path) was
// written; ok is false when the key is not in the file (a default).
func (c *Config) Position(path string) (line, col int, ok bool) {
	kp, ok := c.pos[path]
	return kp.valLine, kp.valCol, ok
}

// ErrorAt builds an Error for the value at path, positioned at that value
// or, when the key was not written, at its nearest written parent. serve
// uses it to report, for example, a certificate that fails to load.
func (c *Config) ErrorAt(path, msg, hint string) *Error {
	line, col := lookupPos(c.pos, path)
	return &Error{File: c.Source, Line: line, Column: col, Path: path, Msg: msg, Hint: hint}
}

// lookupPos finds path's value position, else the key position of its
// nearest ancestor that was written, else 1:1 (0:0 without positions).
func lookupPos(pos map[string]keyPos, path string) (int, int) {
	if pos == nil {
		return 0, 0
	}
	if kp, ok := pos[path]; ok {
		return kp.valLine, kp.valCol
	}
	for p := parentPath(path); ; p = parentPath(p) {
		if kp, ok := pos[p]; ok {
			if p == "" {
				return kp.valLine, kp.valCol
			}
			return kp.keyLine, kp.keyCol
		}
		if p == "" {
			return 1, 1
		}
	}
}

// parentPath strips the last element of a dotted path: ".key", "[3]" or `["name"]`.
func parentPath(p string) string {
	if strings.HasSuffix(p, `"]`) {
		if i := strings.LastIndex(p, `["`); i >= 0 {
			return p[:i]
		}
	}
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// String summarises c for logs: file, listener and upstream count.
func (c *Config) String() string {
	return fmt.Sprintf("config %s: listen %s, %d upstream(s)", c.Source, c.Listen.Address, len(c.Upstreams.Servers))
}
