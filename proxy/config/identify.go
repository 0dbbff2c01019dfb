package config

import (
	"errors"
	"io"
	"os"

	"github.com/easgate/easgate/eas"
)

// IdentifyRules reads identify.rules_file and compiles it with the embedded
// client rules. With no rules file it returns the embedded rule set. A
// problem in the rules file comes back as Errors positioned in that file
// (its own line and column numbers, Path "identify.rules_file"); a file
// that cannot be read is positioned at the key in the config, like
// CheckFiles. The file is read on every call: reload picks up its changes.
func (c *Config) IdentifyRules() (*eas.Rules, Errors) {
	name := c.Identify.RulesFile
	if name == "" {
		return eas.DefaultRules(), nil
	}
	const path = "identify.rules_file"
	f, err := os.Open(name)
	if err != nil {
		return nil, Errors{c.ErrorAt(path, "cannot read "+show(name)+": "+fsReason(err), "check the path")}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, eas.MaxRulesFileSize+1))
	if err != nil {
		return nil, Errors{c.ErrorAt(path, "cannot read "+show(name)+": "+fsReason(err), "check the path")}
	}
	rs, err := eas.NewRules(name, data)
	if err == nil {
		return rs, nil
	}
	var re eas.RuleErrors
	if !errors.As(err, &re) {
		return nil, Errors{c.ErrorAt(path, err.Error(), "")}
	}
	out := make(Errors, 0, len(re))
	for _, e := range re {
		out = append(out, &Error{File: e.File, Line: e.Line, Column: e.Column, Path: path, Msg: e.Msg,
			Hint: "the format is in the README, section Client identification"})
	}
	return nil, out
}
