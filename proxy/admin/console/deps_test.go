package console

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestForbiddenImports keeps the dependency direction of ARCHITECTURE.md:
// proxy mounts the console, so the console never imports proxy; it gets
// client certificates already mapped (no certs) and never sees the load
// harness.
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
			"net/http/httptest",
			"testing",
		} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") && bad != "github.com/easgate/easgate/proxy" {
				t.Errorf("proxy/admin/console depends on %s", dep)
			}
		}
	}
}
