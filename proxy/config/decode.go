package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds the configuration file; larger input is rejected
// before parsing so a bad file cannot exhaust memory.
const MaxFileSize = 4 << 20

// keyPos is where a key and its value were written (1-based).
type keyPos struct{ keyLine, keyCol, valLine, valCol int }

// checker decodes a yaml.Node tree into a Config and validates it,
// collecting every problem with its position.
type checker struct {
	file  string
	errs  Errors
	warns Errors
	pos   map[string]keyPos
	bad   map[string]bool // paths whose value could not be decoded
	steps int             // decode budget (bounds alias expansion)
	max   int
	stop  bool
}

var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
	percentType  = reflect.TypeFor[Percent]()
	patternsType = reflect.TypeFor[Patterns]()
)

// maxErrors bounds the report; a file with more problems is probably not a config at all.
const maxErrors = 100

func (c *checker) addAt(line, col int, path, hint, format string, args ...any) {
	if len(c.errs) >= maxErrors {
		if !c.stop {
			c.stop = true
			c.errs = append(c.errs, &Error{File: c.file, Line: line, Column: col,
				Msg: "too many errors", Hint: "fix the errors above first"})
		}
		return
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Column: col, Path: path,
		Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// nodeErr reports a decode problem at n and marks path so validation does
// not pile further errors on the same value.
func (c *checker) nodeErr(n *yaml.Node, path, hint, format string, args ...any) {
	c.bad[path] = true
	c.addAt(n.Line, n.Column, path, hint, format, args...)
}

// parseYAML turns data into the document's root node, or positioned errors.
func parseYAML(file string, data []byte) (root *yaml.Node, errs Errors) {
	fail := func(line, col int, hint, format string, args ...any) Errors {
		return Errors{{File: file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...), Hint: hint}}
	}
	if len(data) > MaxFileSize {
		return nil, fail(1, 1, "a configuration file is a few KiB; check the file name",
			"file is %d bytes, larger than the %d-byte limit", len(data), MaxFileSize)
	}
	if errs := findTabs(file, data); len(errs) > 0 {
		return nil, errs
	}
	defer func() {
		if r := recover(); r != nil {
			root, errs = nil, fail(1, 1, "simplify the file; this input crashed the YAML parser",
				"YAML parser failure")
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(1, 1, "start from examples/easgate.yaml", "the file is empty")
		}
		return nil, Errors{yamlError(file, data, err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, fail(1, 1, "start from examples/easgate.yaml", "the file is empty")
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		return nil, fail(second.Line, second.Column, `remove the "---" line and everything after it`,
			"only one YAML document is allowed")
	} else if !errors.Is(err, io.EOF) {
		return nil, Errors{yamlError(file, data, err)}
	}
	root = doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, fail(root.Line, root.Column, "start from examples/easgate.yaml", "the file is empty")
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, root.Column,
			"the top level holds sections such as listen:, upstreams:, policy:",
			"the file must be a mapping of sections, not %s", kindName(root))
	}
	return root, nil
}

// findTabs reports every line indented with a tab (YAML forbids them).
func findTabs(file string, data []byte) Errors {
	var errs Errors
	line := 0
	for len(data) > 0 {
		line++
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		for col, ch := range l {
			if ch == ' ' {
				continue
			}
			if ch == '\t' {
				rest := bytes.TrimLeft(l[col:], " \t\r")
				if len(rest) > 0 && rest[0] != '#' {
					errs = append(errs, &Error{File: file, Line: line, Column: col + 1,
						Msg: "tab character in indentation", Hint: "YAML indents with spaces only; replace the tab with spaces"})
				}
			}
			break
		}
	}
	return errs
}

var (
	yamlLineRe   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorRe = regexp.MustCompile(`^unknown anchor '([^']*)' referenced$`)
)

// yamlParserError reports messages that yaml.v3 raises in its parser (as
// opposed to its scanner): their line is the 0-based line where the
// unfinished block or flow collection starts.
func yamlParserError(msg string) bool {
	if !strings.HasPrefix(msg, "did not find expected ") {
		return false
	}
	rest := strings.TrimPrefix(msg, "did not find expected ")
	return rest == "key" || rest == "node content" || rest == "<document start>" ||
		rest == "'-' indicator" || strings.HasPrefix(rest, "',' or")
}

// yamlError positions a yaml.v3 syntax error. yaml.v3 gives only a line;
// the column is that line's first non-blank character.
func yamlError(file string, data []byte, err error) *Error {
	msg := err.Error()
	line, col := 0, 0
	hint := "check indentation, colons and quotes on this line"
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if yamlParserError(msg) {
			line++
			hint = "the list or mapping that starts here is not closed or not indented consistently; check the lines below it"
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		if m := yamlAnchorRe.FindStringSubmatch(msg); m != nil {
			hint = "define the anchor with &" + m[1] + " before using it"
			if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
				line = bytes.Count(data[:i], []byte{'\n'}) + 1
				col = i - bytes.LastIndexByte(data[:i], '\n')
			}
		}
	}
	if line < 1 {
		line = 1
	}
	if col < 1 {
		col = firstColumn(data, line)
	}
	return &Error{File: file, Line: line, Column: col, Msg: "YAML syntax error: " + msg, Hint: hint}
}

// firstColumn is the 1-based column of the first non-blank byte on line.
func firstColumn(data []byte, line int) int {
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return 1
		}
		data = data[i+1:]
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	}
	for i, ch := range data {
		if ch != ' ' && ch != '\t' && ch != '\r' {
			return i + 1
		}
	}
	return 1
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!null":
		return "an empty value"
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	}
	return "the string " + show(n.Value)
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// show quotes a value for an error message: at most 60 characters, and any
// user:password@ in a URL replaced by ***@.
func show(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			s = s[:i+3] + "***" + rest[at:]
		}
	}
	if r := []rune(s); len(r) > 60 {
		s = string(r[:57]) + "..."
	}
	return strconv.Quote(s)
}

// join appends a key to a dotted path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var simpleKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// mapPath names a free-form map key (group or user name) inside path.
func mapPath(path, key string) string {
	if simpleKey.MatchString(key) {
		return join(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func (c *checker) step(n *yaml.Node, path string) bool {
	if c.stop {
		return false
	}
	c.steps++
	if c.steps > c.max {
		c.stop = true
		c.nodeErr(n, path, "write values out instead of repeating large anchors",
			"the document expands to too many values (aliases nest too deeply)")
		return false
	}
	return true
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// decode stores node n into v (a settable value of a Config field).
func (c *checker) decode(n *yaml.Node, v reflect.Value, path string) {
	if !c.step(n, path) {
		return
	}
	n = resolve(n)
	if n.Kind == yaml.AliasNode {
		c.nodeErr(n, path, "", "unresolvable alias")
		return
	}
	switch v.Type() {
	case durationType:
		c.decodeDuration(n, v, path)
		return
	case sizeType:
		c.decodeSize(n, v, path)
		return
	case percentType:
		c.decodePercent(n, v, path)
		return
	case patternsType:
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			v.Set(reflect.ValueOf(Patterns{n.Value}))
			return
		}
		c.decodeStrings(n, v, path, "write one value or a list such as [a, b]")
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		c.decodeStruct(n, v, path)
	case reflect.String:
		if s, ok := c.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := c.scalar(n, path, "true or false")
		if !ok {
			return
		}
		switch {
		case n.ShortTag() == "!!bool" && strings.EqualFold(s, "true"):
			v.SetBool(true)
		case n.ShortTag() == "!!bool" && strings.EqualFold(s, "false"):
			v.SetBool(false)
		default:
			c.nodeErr(n, path, "YAML booleans are true and false, without quotes",
				"expected true or false, got %s", kindName(n))
		}
	case reflect.Int:
		s, ok := c.scalar(n, path, "a whole number")
		if !ok {
			return
		}
		if n.ShortTag() != "!!int" {
			hint := ""
			if _, err := strconv.Atoi(s); err == nil {
				hint = "remove the quotes"
			}
			c.nodeErr(n, path, hint, "expected a whole number, got %s", kindName(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
		if err != nil || int64(int(i)) != i || i > 1<<40 || i < -(1<<40) {
			c.nodeErr(n, path, "", "number %s is out of range", s)
			return
		}
		v.SetInt(i)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			c.decodeStrings(n, v, path, "write a list such as [a, b], or one \"- value\" per line")
			return
		}
		c.decodeSlice(n, v, path)
	case reflect.Map:
		c.decodeMap(n, v, path)
	default:
		panic("config: unsupported field type " + v.Type().String())
	}
}

// scalar returns a non-empty scalar's text as written.
func (c *checker) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		c.nodeErr(n, path, "", "expected %s, got %s", want, kindName(n))
		return "", false
	}
	if isNull(n) {
		c.nodeErr(n, path, "give a value or remove the key", "missing value, expected %s", want)
		return "", false
	}
	return n.Value, true
}

func (c *checker) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	s, ok := c.scalar(n, path, "a duration")
	if !ok {
		return
	}
	d, err := ParseDuration(s)
	switch {
	case errors.Is(err, errDurationUnit):
		c.nodeErr(n, path, "add a unit, for example "+strings.TrimSpace(s)+"s", "duration %s has no unit", show(s))
	case errors.Is(err, errDurationDays):
		c.nodeErr(n, path, "write days in hours, for example 24h", "invalid duration %s", show(s))
	case err != nil:
		c.nodeErr(n, path, "use Go syntax such as 90s, 15m", "invalid duration %s", show(s))
	default:
		v.SetInt(int64(d))
	}
}

func (c *checker) decodeSize(n *yaml.Node, v reflect.Value, path string) {
	s, ok := c.scalar(n, path, "a size")
	if !ok {
		return
	}
	sz, err := ParseSize(s)
	switch {
	case errors.Is(err, errSizeAmbiguous):
		c.nodeErr(n, path, "write KiB/MiB/GiB (1024-based) or KB/MB/GB (1000-based)", "ambiguous size unit in %s", show(s))
	case errors.Is(err, errSizeRange):
		c.nodeErr(n, path, "", "size %s is too large", show(s))
	case err != nil:
		c.nodeErr(n, path, "use bytes or a unit such as 512KiB, 64MiB, 1GiB", "invalid size %s", show(s))
	default:
		v.SetInt(int64(sz))
	}
}

func (c *checker) decodePercent(n *yaml.Node, v reflect.Value, path string) {
	s, ok := c.scalar(n, path, "a percentage")
	if !ok {
		return
	}
	p, err := ParsePercent(s)
	switch {
	case errors.Is(err, errPercentSign):
		hint := "write a percentage with its sign, such as 50%"
		if f, ferr := strconv.ParseFloat(strings.TrimSpace(s), 64); ferr == nil && f > 0 && f <= 1 {
			hint = "write " + Percent(f*100).String() + " for a share of " + strings.TrimSpace(s)
		} else if ferr == nil {
			hint = "write " + strings.TrimSpace(s) + "%"
		}
		c.nodeErr(n, path, hint, "percentage %s has no %% sign", show(s))
	case err != nil:
		c.nodeErr(n, path, "write a percentage such as 50%", "invalid percentage %s", show(s))
	default:
		v.SetFloat(float64(p))
	}
}

func (c *checker) decodeStrings(n *yaml.Node, v reflect.Value, path, hint string) {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind != yaml.SequenceNode {
		c.nodeErr(n, path, hint, "expected a list, got %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, e := range n.Content {
		ep := fmt.Sprintf("%s[%d]", path, i)
		if !c.step(e, ep) {
			return
		}
		e = resolve(e)
		c.pos[ep] = keyPos{e.Line, e.Column, e.Line, e.Column}
		s, ok := c.scalar(e, ep, "a string")
		if !ok {
			continue
		}
		out = reflect.Append(out, reflect.ValueOf(s))
	}
	v.Set(out)
}

func (c *checker) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind == yaml.ScalarNode && v.Type().Elem().Kind() == reflect.Int {
		// One number stands for a list of one (expect_status: 200).
		out := reflect.MakeSlice(v.Type(), 1, 1)
		c.decode(n, out.Index(0), path)
		v.Set(out)
		return
	}
	if n.Kind != yaml.SequenceNode {
		c.nodeErr(n, path, "write a list, one \"- key: value\" item per entry", "expected a list, got %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		ep := fmt.Sprintf("%s[%d]", path, i)
		r := resolve(e)
		c.pos[ep] = keyPos{r.Line, r.Column, r.Line, r.Column}
		c.decode(e, out.Index(i), ep)
	}
	v.Set(out)
}

func (c *checker) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind != yaml.MappingNode {
		c.nodeErr(n, path, "", "expected a mapping of names, got %s", kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		name, ok := c.key(k, path)
		if !ok {
			continue
		}
		kp := mapPath(path, name)
		if first, dup := seen[name]; dup {
			c.nodeErr(k, kp, "remove one of them", "duplicate key %s (first on line %d)", show(name), first)
			continue
		}
		seen[name] = k.Line
		rv := resolve(val)
		c.pos[kp] = keyPos{k.Line, k.Column, rv.Line, rv.Column}
		elem := reflect.New(v.Type().Elem()).Elem()
		c.decode(val, elem, kp)
		m.SetMapIndex(reflect.ValueOf(name), elem)
	}
	v.Set(m)
}

// key returns a mapping key's text, reporting non-scalar and merge keys.
func (c *checker) key(k *yaml.Node, path string) (string, bool) {
	if k.Kind != yaml.ScalarNode || isNull(k) {
		c.addAt(k.Line, k.Column, path, "keys are plain names followed by a colon", "invalid key: %s", kindName(k))
		return "", false
	}
	if k.ShortTag() == "!!merge" {
		c.bad[path] = true
		c.addAt(k.Line, k.Column, path, "write the keys out instead of merging an anchor", "YAML merge keys (<<) are not supported")
		return "", false
	}
	if k.Value == "" {
		c.addAt(k.Line, k.Column, path, "", "empty key")
		return "", false
	}
	return k.Value, true
}

func (c *checker) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return // "section:" with everything commented out: keep defaults
	}
	if n.Kind != yaml.MappingNode {
		c.nodeErr(n, path, "write \"key: value\" lines indented under it", "expected a mapping, got %s", kindName(n))
		return
	}
	fields := schemaOf(v.Type())
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		name, ok := c.key(k, path)
		if !ok {
			continue
		}
		kp := join(path, name)
		if first, dup := seen[name]; dup {
			c.nodeErr(k, kp, "remove one of them", "duplicate key (first on line %d)", first)
			continue
		}
		seen[name] = k.Line
		f, ok := fields.byName[name]
		if !ok {
			c.addAt(k.Line, k.Column, kp, unknownKeyHint(name, path, fields), "unknown key")
			continue
		}
		rv := resolve(val)
		c.pos[kp] = keyPos{k.Line, k.Column, rv.Line, rv.Column}
		c.decode(val, v.Field(f.index), kp)
	}
}
