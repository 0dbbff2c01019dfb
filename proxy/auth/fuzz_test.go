package auth

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
)

// loginSeeds reads testdata/logins.txt.
func loginSeeds(t testing.TB) []string {
	data, err := os.ReadFile("testdata/logins.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			out = append(out, l)
		}
	}
	return out
}

var knownReasons = map[Reason]bool{
	ReasonNoCredentials: true, ReasonUnsupportedScheme: true, ReasonBadCredentials: true,
	ReasonCertRequired: true, ReasonUserMismatch: true, ReasonCertUserMismatch: true,
	ReasonIdentityMismatch: true, ReasonCertBadIdentity: true, ReasonCertNoIdentity: true,
	ReasonCertRevoked: true, ReasonCertInvalid: true,
}

// FuzzCheck drives Check with arbitrary user strings in every position and
// checks its invariants: answers are consistent, an accepted request's
// identities all name the EAS User, and only fixed reasons come out.
func FuzzCheck(f *testing.F) {
	seeds := loginSeeds(f)
	for i, a := range seeds {
		bb := seeds[(i*7+3)%len(seeds)]
		f.Add(uint8(i), a, a, "", bb)
		f.Add(uint8(i+1), a, bb, "Basic", a)
	}
	f.Add(uint8(2), "", "jdoe", "Negotiate", "jdoe@corp.example.com")
	f.Fuzz(func(t *testing.T, sel uint8, login, user, scheme, cert string) {
		a := &Authenticator{mode: Mode(sel % 4)}
		in := Input{User: []byte(user)}
		if login != "" {
			in.AuthScheme, in.AuthLogin = []byte("Basic"), []byte(login)
		} else if scheme != "" {
			in.AuthScheme = []byte(scheme)
		}
		switch sel >> 2 % 4 {
		case 0:
			in.Cert = &certs.Identity{Name: cert}
		case 1:
			in.CertErr = certs.ErrNoCertificate
		case 2:
			in.CertErr = &certs.VerifyError{Reason: certs.Reason(cert)}
		}
		res := a.Check(in)
		switch {
		case res.OK != (res.Status == 0), res.OK != (res.Reason == ""):
			t.Fatalf("inconsistent result %+v", res)
		case !res.OK && res.Status != 401 && res.Status != 403:
			t.Fatalf("status %d", res.Status)
		case res.WWWAuthenticate && res.Status != 401:
			t.Fatalf("challenge with status %d", res.Status)
		case !res.OK && !knownReasons[res.Reason] && !isCertReason(res.Reason):
			t.Fatalf("unknown reason %q", res.Reason)
		}
		if !res.OK {
			return
		}
		if len(res.Identity) == 0 {
			t.Fatalf("accepted without identity: %+v", res)
		}
		basic := len(in.AuthLogin) > 0
		hasCert := in.Cert != nil
		if basic && len(in.User) > 0 && !eas.SameUser(in.AuthLogin, in.User) {
			t.Fatalf("accepted Basic %q for User %q", login, user)
		}
		if hasCert && len(in.User) > 0 && !eas.SameUser([]byte(cert), in.User) {
			t.Fatalf("accepted certificate %q for User %q", cert, user)
		}
		if hasCert && basic && !eas.SameUser([]byte(cert), in.AuthLogin) {
			t.Fatalf("accepted certificate %q with Basic %q", cert, login)
		}
		want := map[Mode]func() bool{
			ModeCredentials: func() bool { return basic },
			ModeCertificate: func() bool { return hasCert },
			ModeEither:      func() bool { return basic || hasCert },
			ModeBoth:        func() bool { return basic && hasCert },
		}[a.mode]
		if !want() {
			t.Fatalf("mode %s accepted basic=%v cert=%v", a.mode, basic, hasCert)
		}
		if (res.Method == policy.AuthBoth) != (basic && hasCert) {
			t.Fatalf("method %s with basic=%v cert=%v", res.Method, basic, hasCert)
		}
	})
}

func isCertReason(r Reason) bool {
	switch r {
	case ReasonCertExpired, ReasonCertNotYetValid, ReasonCertUntrusted, ReasonCertWrongEKU,
		ReasonCertRevocationUnknown, ReasonCertMalformed:
		return true
	}
	return false
}

// FuzzShieldRecord feeds arbitrary bytes to the decoder of persisted
// lockout records (a damaged or hand-edited state file) and checks that a
// record either fails with an error or loads into a usable entry.
func FuzzShieldRecord(f *testing.F) {
	files, _ := filepath.Glob("testdata/lockout/*.json")
	if len(files) == 0 {
		f.Fatal("no seeds in testdata/lockout")
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := fromRecord(data)
		if err != nil {
			return
		}
		switch e.kind {
		case kindUserDevice, kindUserAddr, kindAddr, kindUserAll:
		default:
			t.Fatalf("kind %d", e.kind)
		}
		if len(e.fails) > maxFailuresTracked || len(e.users) > maxSprayUsersTracked {
			t.Fatalf("unbounded record: %d failures, %d users", len(e.fails), len(e.users))
		}
		// it must load into a shield and be usable
		st := newMemStore()
		_ = st.Update(BucketLockout, map[string][]byte{"k": data}, nil)
		c := &clock{t: t0}
		cfg := lockoutCfg(3, 2)
		cfg.UserFailures = 4
		s := newShield(t, cfg, st, c)
		if err := s.Load(); err != nil {
			t.Fatalf("fromRecord accepted what Load refused: %v", err)
		}
		s.Allow([]byte(e.user), []byte(e.device), e.addr, []byte("pw"), t0)
		s.Record([]byte(e.user+"x"), []byte(e.device), e.addr, []byte("pw"), RouteEAS, 401, t0.Add(time.Second))
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	})
}
