package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert := write("gw.pem", "-----BEGIN CERTIFICATE-----")
	key := write("gw.key", "PRIVATE-KEY-SECRET")
	token := write("admin.token", "TOKEN-SECRET")
	src := strings.NewReplacer("$D", dir, "$CERT", cert, "$KEY", key, "$TOKEN", token).Replace(`listen:
  tls:
    certificate: $CERT
    key: $KEY
    client_certificates:
      mode: optional
      trusted_cas: $D/missing-ca.pem
      revocation:
        crl_files: [$CERT, $D]
upstreams:
  servers: [{url: "https://cas1.example.com"}]
state:
  path: $D/nodir/state.db
admin:
  token_file: $TOKEN
log:
  access_log: $D/access.log
`)
	cfg, err := Parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	errs := cfg.CheckFiles()
	want := []string{
		`f.yaml:7:20: listen.tls.client_certificates.trusted_cas: cannot read "` + dir + `/missing-ca.pem": no such file or directory (hint: check the path)`,
		`f.yaml:9:` + strconv.Itoa(len("        crl_files: [")+len(cert)+3) + `: listen.tls.client_certificates.revocation.crl_files[1]: "` + dir + `" is not a regular file (hint: name a file, not a directory)`,
		`f.yaml:13:9: state.path: directory "` + dir + `/nodir" of "` + dir + `/nodir/state.db": no such file or directory (hint: create the directory, or fix the path)`,
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("CheckFiles\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	for _, secret := range []string{"PRIVATE-KEY-SECRET", "TOKEN-SECRET"} {
		if strings.Contains(errs.Error(), secret) {
			t.Errorf("file contents leaked: %v", errs)
		}
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(key, 0); err != nil {
			t.Fatal(err)
		}
		errs = cfg.CheckFiles()
		if !strings.Contains(errs.Error(), `listen.tls.key: cannot read "`+key+`": permission denied (hint: let the user easgate runs as read it)`) {
			t.Errorf("unreadable key not reported: %v", errs)
		}
	}
	if errs := Default().CheckFiles(); errs != nil {
		t.Errorf("Default() names no files, got %v", errs)
	}
}
