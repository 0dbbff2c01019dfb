package config

import (
	"reflect"
	"sort"
	"strings"
	"sync"
)

// field is one YAML key of a struct in the schema.
type field struct {
	name  string
	index int
	check string // "file", "dir" or ""
}

type structSchema struct {
	fields []field
	byName map[string]field
}

var schemas sync.Map // reflect.Type -> *structSchema

// schemaOf lists the YAML keys of struct type t.
func schemaOf(t reflect.Type) *structSchema {
	if s, ok := schemas.Load(t); ok {
		return s.(*structSchema)
	}
	s := &structSchema{byName: map[string]field{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		f := field{name: name, index: i, check: sf.Tag.Get("check")}
		s.fields = append(s.fields, f)
		s.byName[name] = f
	}
	schemas.Store(t, s)
	return s
}

// KeyPaths lists every leaf key of the file format in schema order, e.g.
// "listen.tls.extra_certificates[].pfx", "policy.groups.<name>",
// "policy.users.<user>.allowed_devices". The README's configuration reference documents each one.
func KeyPaths() []string {
	var out []string
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		switch {
		case t == durationType || t == sizeType || t == patternsType:
			out = append(out, path)
		case t.Kind() == reflect.Struct:
			for _, f := range schemaOf(t).fields {
				walk(t.Field(f.index).Type, join(path, f.name))
			}
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
			walk(t.Elem(), path+"[]")
		case t.Kind() == reflect.Map:
			placeholder := "<name>"
			if strings.HasSuffix(path, "users") {
				placeholder = "<user>"
			}
			walk(t.Elem(), join(path, placeholder))
		default:
			out = append(out, path)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// keyIndex maps a key name to the parent paths where it exists.
var keyIndex = sync.OnceValue(func() map[string][]string {
	idx := map[string][]string{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		switch {
		case t == durationType || t == sizeType || t == patternsType:
		case t.Kind() == reflect.Struct:
			for _, f := range schemaOf(t).fields {
				idx[f.name] = append(idx[f.name], path)
				walk(t.Field(f.index).Type, join(path, f.name))
			}
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
			walk(t.Elem(), path+"[]")
		case t.Kind() == reflect.Map:
			walk(t.Elem(), join(path, "<name>"))
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return idx
})

// unknownKeyHint suggests what an unknown key was meant to be.
func unknownKeyHint(name, parent string, s *structSchema) string {
	if f, ok := s.byName[name+"_file"]; ok {
		return `did you mean "` + f.name + `"? secrets are read from a file, never written in the config`
	}
	best, bestD := "", 1<<30
	norm := normalizeKey(name)
	for _, f := range s.fields {
		if normalizeKey(f.name) == norm {
			return `did you mean "` + f.name + `"?`
		}
		if d := editDistance(strings.ToLower(name), f.name); d < bestD {
			best, bestD = f.name, d
		}
	}
	if best != "" && (bestD <= 2 || bestD*3 <= len(name)) {
		return `did you mean "` + best + `"?`
	}
	if parents := keyIndex()[name]; len(parents) > 0 {
		p := parents[0]
		if p == "" {
			return `"` + name + `" is a top-level section, not part of "` + parent + `"`
		}
		return `"` + name + `" belongs under "` + p + `" (` + p + "." + name + ")"
	}
	names := make([]string, len(s.fields))
	for i, f := range s.fields {
		names[i] = f.name
	}
	sort.Strings(names)
	return "known keys here: " + strings.Join(names, ", ")
}

// normalizeKey folds case, '-' and '_' so "plainHTTP" and "plain-http" find "plain_http".
func normalizeKey(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r != '_' && r != '-' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// suggest returns the candidate nearest to s, or "" when none is close.
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if d := editDistance(ls, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" && (bestD <= 2 || bestD*3 <= len(s)) && bestD < len(s) {
		return best
	}
	return ""
}
