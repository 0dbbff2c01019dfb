package kerberos

import (
	"strings"
	"testing"

	"github.com/easgate/easgate/internal/testkit"
)

// TestImports enforces doc.go: kerberos depends only on the standard
// library, gokrb5 and gokrb5's own dependencies; never on easgate's
// packages, fasthttp or a logger.
func TestImports(t *testing.T) {
	deps := testkit.Deps(t, ".")
	for _, dep := range deps {
		switch {
		case dep == "github.com/easgate/easgate/proxy/auth/kerberos":
		case strings.HasPrefix(dep, "github.com/easgate/"):
			t.Errorf("kerberos must not import easgate's %s", dep)
		case strings.Contains(dep, "fasthttp"), strings.Contains(dep, "zerolog"):
			t.Errorf("kerberos must not import %s", dep)
		case strings.HasPrefix(dep, "github.com/jcmturner/"), strings.HasPrefix(dep, "github.com/hashicorp/go-uuid"),
			strings.HasPrefix(dep, "golang.org/x/"):
		default:
			t.Errorf("kerberos imports %s, outside gokrb5 and its dependencies", dep)
		}
	}
}
