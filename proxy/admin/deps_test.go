package admin

import (
	"strings"
	"testing"

	"github.com/easgate/easgate/internal/testkit"
)

// TestForbiddenImports keeps the dependency direction of ARCHITECTURE.md:
// proxy imports admin, so admin never imports proxy; it does not need
// certificates or the load harness either, nor its own client, the web
// console.
func TestForbiddenImports(t *testing.T) {
	deps := testkit.Deps(t, ".")
	for _, dep := range deps {
		for _, bad := range []string{
			"github.com/easgate/easgate/proxy",
			"github.com/easgate/easgate/certs",
			"github.com/easgate/easgate/bench",
			"github.com/easgate/easgate/cmd",
			// The console is a client of the API, never the other way.
			"github.com/easgate/easgate/proxy/admin/console",
		} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") && bad != "github.com/easgate/easgate/proxy" {
				t.Errorf("proxy/admin depends on %s", dep)
			}
		}
	}
}
