package held

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces doc.go's layering rule with the go tool: held never
// depends on proxy, and of easgate's packages only on policy, eas and
// proxy/upstream.
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
		switch p {
		case "github.com/easgate/easgate/proxy/held", "github.com/easgate/easgate/proxy/upstream",
			"github.com/easgate/easgate/policy", "github.com/easgate/easgate/eas", "github.com/easgate/easgate/eas/wbxml":
			continue
		}
		if strings.HasPrefix(p, "github.com/easgate/") {
			t.Errorf("package held depends on %s; see doc.go", p)
		}
	}
}

func TestPackageDoc(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "// Package held ") || !strings.Contains(s, "must never import") {
		t.Error("doc.go lacks the package comment or its import rule")
	}
}
