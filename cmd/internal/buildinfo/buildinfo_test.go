package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFrom(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef"},
		{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		desc                  string
		bi                    *debug.BuildInfo
		version, commit, date string
		want                  []string
	}{
		{"from build info", bi, "dev", "", "", []string{
			"easgate v1.4.0\n",
			"commit:     0123456789abcdef (with uncommitted changes)\n",
			"build date: 2026-12-01T10:00:00Z (time of the commit)\n",
			"go:         go1.26.1 " + platform + "\n"}},
		{"link-time values win", bi, "1.5.0", "feedface", "2026-12-06T08:00:00Z", []string{
			"easgate 1.5.0\n", "commit:     feedface (with uncommitted changes)\n",
			"build date: 2026-12-06T08:00:00Z\n"}},
		{"nothing known", nil, "dev", "", "", []string{
			"easgate dev\n", "commit:     unknown (", "build date: unknown (", "go:         " + runtime.Version()}},
		{"devel module", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev", "", "", []string{"easgate dev\n"}},
	} {
		var b strings.Builder
		From(tc.bi, "easgate", tc.version, tc.commit, tc.date).Write(&b)
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.desc, w, b.String())
			}
		}
		if n := strings.Count(b.String(), "\n"); n != 4 {
			t.Errorf("%s: %d lines, want 4", tc.desc, n)
		}
	}
}
