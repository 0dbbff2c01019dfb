package held

import (
	"os"
	"strings"
	"testing"

	"github.com/easgate/easgate/internal/testkit"
)

// TestImports enforces doc.go's layering rule with the go tool: held never
// depends on proxy, and of easgate's packages only on policy, eas and
// proxy/upstream.
func TestImports(t *testing.T) {
	deps := testkit.Deps(t, ".")
	for _, p := range deps {
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
