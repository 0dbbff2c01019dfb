package console

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzConsoleRequest: whatever the path, query and form, a signed-in
// request gets an answer that is not a server error, and nothing the
// request carried comes back unescaped.
func FuzzConsoleRequest(f *testing.F) {
	for _, s := range [][3]string{
		{"/devices", "q=%3Cscript%3E&state=blocked&sort=-user&page_size=3", ""},
		{"/devices/alice%40corp.example.com/ApplF17XK2Q8N0PA", "done=allow", "action=allow&note=x"},
		{"/queue", "", "action=block&device=alice%40corp.example.com%2FApplG22YY3Q8N0PB&device=%zz"},
		{"/audit", "since=1e9d&limit=-1", ""},
		{"/report", "since=30d", "config=listen%3A%0A++plain_http%3A+maybe%0A"},
		{"/devices.csv", "seen_since=12h&page_token=%%%", ""},
		{"/devices/%2e%2e/x", "", ""},
		{"/static/..%2fconsole.go", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	e := newEnv(f)
	sid, csrf := e.signIn(opToken)
	f.Fuzz(func(t *testing.T, path, query, form string) {
		e.t = t
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?# \t\r\n") || strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/sign") {
			return
		}
		for _, method := range []string{"GET", "POST"} {
			var body url.Values
			if method == "POST" {
				var err error
				if body, err = url.ParseQuery(form); err != nil {
					body = url.Values{}
				}
				body.Set("csrf", csrf)
			}
			target := path
			if query != "" {
				target += "?" + query
			}
			r := e.do(method, target, sid, body)
			if r.status >= 500 {
				t.Fatalf("%s %s: %d %.300s", method, target, r.status, r.body)
			}
			if strings.Contains(r.body, "<script>") || strings.Contains(r.body, " onerror=") {
				t.Fatalf("%s %s: markup from the request came back", method, target)
			}
		}
	})
}
