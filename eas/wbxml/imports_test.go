package wbxml

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsStdlibOnly enforces the package contract: the standard library
// only (see doc.go).
func TestImportsStdlibOnly(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/easgate/easgate/eas/wbxml" {
			t.Errorf("forbidden non-stdlib dependency %s", p)
		}
	}
}
