package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
)

// CheckFiles checks that every file the configuration names exists and is
// a readable regular file, and that the directories of files easgate
// creates (state.path, log.access_log) exist. Each problem is positioned
// at the key that names the file. File contents are never read into an
// error message. The one file whose contents it checks is
// identify.rules_file (see IdentifyRules): its problems are positioned in
// the rules file itself. It returns nil when everything is in place.
func (c *Config) CheckFiles() Errors {
	var errs Errors
	rulesOK := true
	c.walkFiles(reflect.ValueOf(c).Elem(), "", func(path, name, kind string) {
		if msg, hint := checkFile(name, kind); msg != "" {
			e := c.ErrorAt(path, msg, hint)
			errs = append(errs, e)
			if path == "identify.rules_file" {
				rulesOK = false
			}
		}
	})
	if rulesOK {
		_, rerrs := c.IdentifyRules()
		errs = append(errs, rerrs...)
	}
	return errs.sort()
}

// walkFiles calls fn for every non-empty path field tagged check:"file" or check:"dir".
func (c *Config) walkFiles(v reflect.Value, path string, fn func(path, name, kind string)) {
	switch v.Kind() {
	case reflect.Struct:
		for _, f := range schemaOf(v.Type()).fields {
			fv := v.Field(f.index)
			p := join(path, f.name)
			switch {
			case f.check != "" && fv.Kind() == reflect.String:
				if s := fv.String(); s != "" {
					fn(p, s, f.check)
				}
			case f.check != "" && fv.Kind() == reflect.Slice:
				for i := 0; i < fv.Len(); i++ {
					if s := fv.Index(i).String(); s != "" {
						fn(fmt.Sprintf("%s[%d]", p, i), s, f.check)
					}
				}
			default:
				c.walkFiles(fv, p, fn)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			c.walkFiles(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

// checkFile returns a message and hint when name is not usable as kind.
func checkFile(name, kind string) (msg, hint string) {
	if kind == "dir" {
		switch name {
		case "stdout", "stderr", "off":
			return "", ""
		}
		dir := filepath.Dir(name)
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Sprintf("directory %s of %s: %s", show(dir), show(name), fsReason(err)), "create the directory, or fix the path"
		}
		if !st.IsDir() {
			return fmt.Sprintf("%s is not a directory", show(dir)), "fix the path"
		}
		return "", ""
	}
	f, err := os.Open(name)
	if err != nil {
		hint := "check the path"
		if errors.Is(err, fs.ErrPermission) {
			hint = "let the user easgate runs as read it"
		}
		return fmt.Sprintf("cannot read %s: %s", show(name), fsReason(err)), hint
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("cannot read %s: %s", show(name), fsReason(err)), "check the path"
	}
	if !st.Mode().IsRegular() {
		return fmt.Sprintf("%s is not a regular file", show(name)), "name a file, not a directory"
	}
	return "", ""
}
