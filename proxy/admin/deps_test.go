package admin

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestForbiddenImports keeps the dependency direction of ARCHITECTURE.md:
// proxy imports admin, so admin never imports proxy; it does not need
// certificates or the load harness either, nor its own client, the web
// console.
func TestForbiddenImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go tool not found")
		}
		t.Skip("go tool not found; skipping the dependency check")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
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
