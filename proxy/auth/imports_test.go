package auth

import (
	"strings"
	"testing"

	"github.com/easgate/easgate/internal/testkit"
)

// TestImports enforces doc.go: auth never depends on proxy (its parent),
// fasthttp, bench or cmd, and outside the standard library only on the
// easgate packages it is allowed to use and their own dependencies.
func TestImports(t *testing.T) {
	deps := testkit.Deps(t, ".")
	const mod = "github.com/easgate/easgate/"
	allowed := map[string]bool{
		mod + "proxy/auth": true, mod + "eas": true, mod + "eas/wbxml": true, mod + "certs": true,
		mod + "policy": true, mod + "proxy/config": true,
	}
	for _, dep := range deps {
		switch {
		case allowed[dep]:
		case strings.Contains(dep, "fasthttp"):
			t.Errorf("auth must not import fasthttp (found %s)", dep)
		case strings.HasPrefix(dep, mod):
			t.Errorf("auth must not import %s", dep)
		case strings.HasPrefix(dep, "golang.org/x/"), strings.HasPrefix(dep, "github.com/rs/zerolog"),
			// what the allowed easgate packages bring along
			strings.HasPrefix(dep, "github.com/hashicorp/golang-lru/"), dep == "gopkg.in/yaml.v3",
			strings.HasPrefix(dep, "software.sslmate.com/src/go-pkcs12"):
		default:
			t.Errorf("auth imports %s, outside its allowed set", dep)
		}
	}
}
