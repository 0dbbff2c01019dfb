package console

import (
	"strings"
	"testing"

	"github.com/easgate/easgate/internal/testkit"
)

// TestForbiddenImports keeps the dependency direction of ARCHITECTURE.md:
// proxy mounts the console, so the console never imports proxy; it gets
// client certificates already mapped (no certs) and never sees the load
// harness.
func TestForbiddenImports(t *testing.T) {
	deps := testkit.Deps(t, ".")
	for _, dep := range deps {
		for _, bad := range []string{
			"github.com/easgate/easgate/proxy",
			"github.com/easgate/easgate/certs",
			"github.com/easgate/easgate/bench",
			"github.com/easgate/easgate/cmd",
			"net/http/httptest",
			"testing",
		} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") && bad != "github.com/easgate/easgate/proxy" {
				t.Errorf("proxy/admin/console depends on %s", dep)
			}
		}
	}
}
