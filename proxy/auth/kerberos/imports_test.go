package kerberos

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces doc.go: kerberos depends only on the standard
// library, gokrb5 and gokrb5's own dependencies; never on easgate's
// packages, fasthttp or a logger.
func TestImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go tool not found")
		}
		t.Skipf("go tool not in PATH: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
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
