package eas

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces the layering rule of doc.go: package eas (all of
// its files, whoever writes them) depends only on the standard library and
// eas/wbxml. It asks the go tool, so test files' imports are not counted.
func TestImports(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go tool not found in PATH")
		}
		t.Skip("go tool not found in PATH; skipping the dependency check")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/easgate/easgate/eas":       true,
		"github.com/easgate/easgate/eas/wbxml": true,
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("package eas depends on %s; it may import only the standard library and eas/wbxml", p)
		}
	}
}

// TestPackageDoc checks that the package comment exists and states what
// the package must never import.
func TestPackageDoc(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "// Package eas ") || !strings.Contains(s, "must never import") {
		t.Error("doc.go lacks the package comment or its import rule")
	}
}
