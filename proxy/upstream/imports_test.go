package upstream

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces doc.go's layering rule with the go tool: upstream
// depends on no easgate package (fasthttp and its own dependencies are
// fine).
func TestImports(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go tool not found in PATH")
		}
		t.Skip("go tool not found in PATH; skipping the dependency check")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == "github.com/easgate/easgate/proxy/upstream":
		case strings.HasPrefix(p, "github.com/easgate/"):
			t.Errorf("package upstream depends on %s; see doc.go", p)
		}
	}
}

func TestPackageDoc(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "// Package upstream ") || !strings.Contains(s, "must never import") {
		t.Error("doc.go lacks the package comment or its import rule")
	}
}
