package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces the layering: policy knows the EAS vocabulary, never
// the proxy, the config file, certificates or HTTP servers.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{
			"github.com/easgate/easgate/proxy", "github.com/easgate/easgate/certs",
			"github.com/easgate/easgate/bench", "github.com/valyala/fasthttp", "net/http/httptest",
		} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("policy imports %s", dep)
			}
		}
	}
}
