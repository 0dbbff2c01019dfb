package certs

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces doc.go: certs depends only on the standard library,
// golang.org/x/crypto (and what it pulls from golang.org/x) and go-pkcs12;
// never on another easgate package or fasthttp.
func TestImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not in PATH: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const self = "github.com/easgate/easgate/certs"
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == self:
		case strings.HasPrefix(dep, "golang.org/x/crypto/"), strings.HasPrefix(dep, "golang.org/x/sys/"):
		case strings.HasPrefix(dep, "software.sslmate.com/src/go-pkcs12"):
		case strings.Contains(dep, "fasthttp"):
			t.Errorf("certs must not import fasthttp (found %s)", dep)
		case strings.HasPrefix(dep, "github.com/easgate/easgate/"):
			t.Errorf("certs must not import other easgate packages (found %s)", dep)
		default:
			t.Errorf("certs imports %s, outside stdlib, golang.org/x/crypto and go-pkcs12", dep)
		}
	}
}
