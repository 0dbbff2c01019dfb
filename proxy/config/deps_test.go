package config

import (
	"os"
	"strings"
	"testing"

	"github.com/easgate/easgate/internal/testkit"
)

// TestForbiddenImports keeps the dependency direction of ARCHITECTURE.md:
// config is imported by proxy and never imports it, policy, certs or fasthttp.
func TestForbiddenImports(t *testing.T) {
	deps := testkit.Deps(t, ".")
	forbidden := []string{
		"github.com/easgate/easgate/proxy",
		"github.com/easgate/easgate/policy",
		"github.com/easgate/easgate/certs",
		"github.com/valyala/fasthttp",
		"github.com/rs/zerolog",
	}
	for _, dep := range deps {
		for _, bad := range forbidden {
			if dep == bad || strings.HasPrefix(dep, bad+"/") && !strings.HasPrefix(dep, "github.com/easgate/easgate/proxy/config") {
				t.Errorf("proxy/config depends on %s", dep)
			}
		}
		if !strings.Contains(dep, ".") || strings.HasPrefix(dep, "gopkg.in/yaml.v3") ||
			dep == "github.com/easgate/easgate/eas" || strings.HasPrefix(dep, "github.com/easgate/easgate/eas/") || strings.HasPrefix(dep, "github.com/easgate/easgate/proxy/config") ||
			strings.HasPrefix(dep, "vendor/golang.org/x/") {
			continue
		}
		t.Errorf("proxy/config may import only the standard library, yaml.v3 and eas; it depends on %s", dep)
	}
}

// TestReferenceDocumentsEveryKey: the README's configuration reference
// names every key of the format and no key that does not exist.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := referenceSection(string(readme))
	if !ok {
		t.Fatal("README.md has no \"## Configuration reference\" section")
	}
	known := map[string]bool{}
	for _, k := range KeyPaths() {
		known[k] = true
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("the README reference does not document `%s`", k)
		}
	}
	// Every table row's key must exist.
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		k := strings.TrimPrefix(line, "| `")
		k = k[:strings.IndexByte(k, '`')]
		if !known[k] {
			t.Errorf("the README reference documents `%s`, which is not a key", k)
		}
	}
}

// referenceSection returns the README's "## Configuration reference"
// section, up to the next level-2 heading.
func referenceSection(readme string) (string, bool) {
	const head = "## Configuration reference"
	i := strings.Index(readme, head)
	if i < 0 {
		return "", false
	}
	rest := readme[i+len(head):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest, true
}
