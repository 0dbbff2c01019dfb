package proxy

import (
	"io"
	"strings"
	"testing"

	"github.com/easgate/easgate/eas"
)

const siteRules = `rule foomail
  source   our own logs
  ua       FooMail/{app} (Android {version})
  family   android-email
  os-name  Android
  example  ua="FooMail/1.2 (Android 14)" => family=android-email os=Android version=14
`

// TestIdentifyUsesConfiguredRules: the state compiled from a config with
// identify.rules_file identifies with those rules; without one, with the
// embedded rules; a broken rules file fails the build (so a reload keeps
// the running state).
func TestIdentifyUsesConfiguredRules(t *testing.T) {
	base := testYAML([]string{"http://127.0.0.1:1"}, nil)
	rules := tempFile(t, "site.rules", siteRules)
	st, err := buildState(mustParse(t, base+"identify:\n  rules_file: "+rules+"\n"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	x := &exchange{st: st}
	x.identify(&eas.Request{UserAgent: []byte("FooMail/1.2 (Android 14)"), DeviceType: []byte("Android")}, nil)
	if x.client.Family != eas.FamilyAndroidEmail || x.client.OS != eas.OSAndroid || x.client.OSVersion.String() != "14.0" {
		t.Errorf("configured rules not used: %+v", x.client)
	}

	plain, err := buildState(mustParse(t, base), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.close()
	x = &exchange{st: plain}
	x.identify(&eas.Request{UserAgent: []byte("FooMail/1.2 (Android 14)"), DeviceType: []byte("Android")}, nil)
	if x.client.Family != eas.FamilyUnknown || x.client.OS != eas.OSAndroid {
		t.Errorf("embedded rules: %+v", x.client)
	}

	bad := tempFile(t, "bad.rules", strings.Replace(siteRules, "android-email", "gmial", 1))
	if _, err := buildState(mustParse(t, base+"identify:\n  rules_file: "+bad+"\n"), io.Discard); err == nil ||
		!strings.Contains(err.Error(), bad+`:4:12: identify.rules_file: rule foomail: unknown family "gmial"`) {
		t.Errorf("broken rules file: %v", err)
	}
}
