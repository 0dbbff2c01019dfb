package quarantine

import (
	"os"
	"strings"
	"testing"

	"github.com/easgate/easgate/internal/testkit"
)

// TestImports enforces doc.go's layering rule with the go tool.
func TestImports(t *testing.T) {
	deps := testkit.Deps(t, ".")
	for _, p := range deps {
		switch {
		case p == "github.com/easgate/easgate/proxy/quarantine",
			p == "github.com/easgate/easgate/eas", p == "github.com/easgate/easgate/eas/wbxml",
			p == "github.com/easgate/easgate/policy":
		case strings.HasPrefix(p, "github.com/hashicorp/golang-lru"):
			// policy's verdict cache
		default:
			t.Errorf("package quarantine depends on %s; see doc.go", p)
		}
	}
}

func TestPackageDoc(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "// Package quarantine ") || !strings.Contains(s, "must never import") {
		t.Error("doc.go lacks the package comment or its import rule")
	}
}
