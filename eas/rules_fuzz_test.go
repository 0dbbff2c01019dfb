package eas

import (
	"errors"
	"strings"
	"testing"
)

// FuzzNewRules feeds arbitrary rules files to the parser. It must never
// panic; it either returns RuleErrors, every one positioned inside the file,
// or a rule set that identifies every example string without panicking.
// Seeds are the embedded file, cut into its rules, and the administrator's
// sample of the tests.
func FuzzNewRules(f *testing.F) {
	for _, block := range strings.Split(clientRulesData, "\nrule ") {
		f.Add("rule " + block)
	}
	f.Add(adminRules)
	f.Add("ios-build 23C71 26.2.1\n")
	f.Add("disable nine\n")
	f.Fuzz(func(t *testing.T, data string) {
		rs, err := NewRules("f.rules", []byte(data))
		if err != nil {
			var re RuleErrors
			if !errors.As(err, &re) || len(re) == 0 {
				t.Fatalf("error %T %v, want RuleErrors", err, err)
			}
			lines := strings.Count(data, "\n") + 1
			for _, e := range re {
				if e.File != "f.rules" || e.Line < 1 || e.Line > lines || e.Column < 1 {
					t.Fatalf("error outside the file: %v", e)
				}
			}
			return
		}
		for _, r := range rs.List() {
			for i := range r.Examples {
				x := &r.Examples[i]
				c := rs.Identify([]byte(x.UA), []byte(x.DeviceType), x.Info())
				if _, err := c.MarshalJSON(); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
