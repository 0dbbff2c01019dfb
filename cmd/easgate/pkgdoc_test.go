package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestEveryPackageHasADocComment: each package says what it is for (and,
// by convention, what it must never import).
func TestEveryPackageHasADocComment(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}", "github.com/easgate/easgate/...").CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		t.Skipf("go list unavailable: %v", err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, doc, _ := strings.Cut(line, "\t")
		n++
		if strings.TrimSpace(doc) == "" {
			t.Errorf("%s has no package doc comment", path)
		}
	}
	if n < 10 {
		t.Fatalf("only %d packages listed", n)
	}
}
