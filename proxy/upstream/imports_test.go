package upstream

import (
	"os"
	"strings"
	"testing"

	"github.com/easgate/easgate/internal/testkit"
)

// TestImports enforces doc.go's layering rule with the go tool: upstream
// depends on no easgate package (fasthttp and its own dependencies are
// fine).
func TestImports(t *testing.T) {
	deps := testkit.Deps(t, ".")
	for _, p := range deps {
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
