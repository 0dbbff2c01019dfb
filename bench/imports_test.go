package bench

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces the layering: bench reaches easgate over HTTP only,
// so it must never depend on proxy, policy or certs; and it uses no
// third-party module besides fasthttp (and fasthttp's own dependencies).
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	allowedPrefixes := []string{
		"github.com/easgate/easgate/bench",
		"github.com/easgate/easgate/eas",
		"github.com/valyala/",
		"github.com/klauspost/compress",
		"github.com/andybalholm/brotli",
		"golang.org/x/",
		"github.com/molecule-man/go-brrr",
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/easgate/easgate/proxy", "github.com/easgate/easgate/policy", "github.com/easgate/easgate/certs"} {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				t.Errorf("bench imports %s: it must talk to easgate over HTTP only", p)
			}
		}
		ok := false
		for _, a := range allowedPrefixes {
			if strings.HasPrefix(p, a) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("bench depends on %s: only stdlib, fasthttp, eas and eas/wbxml are allowed", p)
		}
	}
}
