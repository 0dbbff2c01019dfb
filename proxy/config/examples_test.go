package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// commentedKey is an option line "  # key: value" (or a "# key:" that
	// opens a block); removing "# " uncomments it at its indentation.
	commentedKey = regexp.MustCompile(`^(\s*)# ([a-z_]+:(\s.*)?)$`)
	// insteadOf opens a block that replaces keys: "# instead of a and b, ...:".
	insteadOf = regexp.MustCompile(`^\s*# instead of ([a-z_]+(?:(?:, | and )[a-z_]+)*)\b`)
	keyLine   = regexp.MustCompile(`^(\s*)(?:- )?([a-z_]+):`)
)

// TestEveryExampleKeyPasses: every file in examples/*.yaml passes Parse
// (what check-config --no-files runs), and so does each block of commented
// options once uncommented; a block after "# instead of X:" replaces the
// keys X it names. So an admin can uncomment any option of the examples.
func TestEveryExampleKeyPasses(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(path)
		if _, err := Parse(name, data); err != nil {
			t.Errorf("%s as shipped:\n%v", name, err)
			continue
		}
		lines := strings.Split(string(data), "\n")
		blocks := 0
		for i := 0; i < len(lines); i++ {
			if commentedKey.FindStringSubmatch(lines[i]) == nil {
				continue
			}
			start := i
			for i < len(lines) && commentedKey.MatchString(lines[i]) {
				i++
			}
			blocks++
			variant := uncommentBlock(lines, start, i)
			if _, err := Parse(name, []byte(strings.Join(variant, "\n"))); err != nil {
				t.Errorf("%s:%d: the commented block does not pass once uncommented:\n%s\n%v",
					name, start+1, strings.Join(lines[start:i], "\n"), err)
			}
		}
		if blocks == 0 && name == "easgate.yaml" {
			t.Errorf("%s: no commented options found: the test is not looking", name)
		}
	}
}

// uncommentBlock returns lines with lines[from:to] uncommented and, when
// the line before them says "# instead of X", the sibling keys X (with
// their children) removed.
func uncommentBlock(lines []string, from, to int) []string {
	indent := len(commentedKey.FindStringSubmatch(lines[from])[1])
	replace := map[string]bool{}
	if from > 0 {
		if m := insteadOf.FindStringSubmatch(lines[from-1]); m != nil {
			for _, k := range regexp.MustCompile(`, | and `).Split(m[1], -1) {
				replace[k] = true
			}
		}
	}
	// The parent block: from the nearest line above with a smaller indent
	// to the next such line below.
	lo, hi := from, to
	for lo > 0 && (blankOrComment(lines[lo-1]) || indentOf(lines[lo-1]) >= indent) {
		lo--
	}
	for hi < len(lines) && (blankOrComment(lines[hi]) || indentOf(lines[hi]) >= indent) {
		hi++
	}
	var out []string
	skipDeeper := -1
	for i, l := range lines {
		if i >= from && i < to {
			m := commentedKey.FindStringSubmatch(l)
			out = append(out, m[1]+m[2])
			skipDeeper = -1
			continue
		}
		if skipDeeper >= 0 {
			if strings.TrimSpace(l) == "" || indentOf(l) > skipDeeper {
				continue // a child of the replaced key
			}
			skipDeeper = -1
		}
		if i >= lo && i < hi && !blankOrComment(l) && indentOf(l) == indent {
			if m := keyLine.FindStringSubmatch(l); m != nil && replace[m[2]] {
				skipDeeper = indent
				continue
			}
		}
		out = append(out, l)
	}
	return out
}

func blankOrComment(l string) bool {
	t := strings.TrimSpace(l)
	return t == "" || strings.HasPrefix(t, "#")
}

func indentOf(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

// TestUncommentBlock: the helper really replaces what "instead of" names,
// so that a passing TestEveryExampleKeyPasses means something.
func TestUncommentBlock(t *testing.T) {
	src := strings.Split(`a:
  b: 1
  c:
    d: 2
  # instead of b and c, this:
  # e: 3
  # f: 4
g: 5`, "\n")
	got := strings.Join(uncommentBlock(src, 5, 7), "\n")
	want := "a:\n  # instead of b and c, this:\n  e: 3\n  f: 4\ng: 5"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
