package postgres

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestImports: the shared store gets values, not the config file; it never
// imports the proxy, the config package, certificates or fasthttp
// (ARCHITECTURE.md, "Dependency direction").
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "./pgtest").CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{
			"github.com/easgate/easgate/proxy", "github.com/easgate/easgate/certs", "github.com/easgate/easgate/bench",
			"github.com/valyala/fasthttp",
		} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("policy/store/postgres imports %s", dep)
			}
		}
	}
}
