package eas

import (
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
)

// reqCheckErr asserts that a Parse failure is a well-formed *ParseError.
func reqCheckErr(t *testing.T, err error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	if pe.Code == ErrNone || pe.Field == "" || pe.Msg == "" || pe.Offset < 0 || pe.HTTPStatus == 0 {
		t.Fatalf("incomplete ParseError %+v", *pe)
	}
	_ = pe.Error()
}

// reqCanon is viewOf with the plain Cmd spelling normalised (the encoder
// writes canonical names).
func reqCanon(r *Request) reqView {
	v := viewOf(r)
	if r.Command.Known() {
		v.CommandName = r.Command.String()
	}
	return v
}

// reqRoundTrip re-encodes r in its own query form, parses it again and
// requires the same request.
func reqRoundTrip(t *testing.T, r *Request) {
	t.Helper()
	var q []byte
	var h reqPairs
	if r.Base64 {
		q = AppendBase64Query(nil, r)
		if len(q) == 0 {
			t.Fatalf("parsed base64 request is not re-encodable: %+v", viewOf(r))
		}
	} else {
		q = AppendPlainQuery(nil, r)
		if r.Version != 0 {
			h = append(h, [2][]byte{[]byte(HeaderProtocolVersion), []byte(r.Version.String())})
		}
		if r.HasPolicyKey {
			h = append(h, [2][]byte{[]byte(HeaderPolicyKey), []byte(strconv.FormatUint(uint64(r.PolicyKey), 10))})
		}
	}
	var r2 Request
	if err := r2.Parse(r.Method, []byte(reqPath), q, h); err != nil {
		t.Fatalf("re-parse of %q: %v\nfirst: %+v", q, err, viewOf(r))
	}
	if a, b := reqCanon(r), reqCanon(&r2); a != b {
		t.Fatalf("round trip via %q changed the request:\n was %+v\n now %+v", q, a, b)
	}
}

func reqSeeds(f *testing.F, base64Form bool) {
	for _, c := range reqTestdataCases(f) {
		if c.method != "POST" || reqIsBase64Form([]byte(c.query)) != base64Form {
			continue
		}
		if base64Form {
			raw, _ := base64.StdEncoding.DecodeString(c.query)
			f.Add(c.query, raw)
		} else {
			f.Add(c.query, c.headers[HeaderProtocolVersion], c.headers[HeaderPolicyKey], c.headers[HeaderAcceptMultiPart])
		}
	}
}

func FuzzParsePlain(f *testing.F) {
	reqSeeds(f, false)
	f.Fuzz(func(t *testing.T, q, ver, pk, amp string) {
		h := reqHeaders(HeaderProtocolVersion, ver, HeaderPolicyKey, pk, HeaderAcceptMultiPart, amp)
		var r Request
		if err := r.Parse([]byte("POST"), []byte(reqPath), []byte(q), h); err != nil {
			reqCheckErr(t, err)
			return
		}
		if len(r.DeviceID) == 0 || len(r.DeviceType) == 0 || len(r.CommandName) == 0 {
			t.Fatalf("POST accepted without required fields: %+v", viewOf(&r))
		}
		reqRoundTrip(t, &r)
	})
}

func FuzzParseBase64(f *testing.F) {
	reqSeeds(f, true)
	// q is tried as a raw query; raw is the decoded byte layout, encoded
	// here so that the fuzzer reaches the field parser directly.
	f.Fuzz(func(t *testing.T, q string, raw []byte) {
		for _, query := range []string{q, base64.StdEncoding.EncodeToString(raw)} {
			var r Request
			if err := r.Parse([]byte("POST"), []byte(reqPath), []byte(query), nil); err != nil {
				reqCheckErr(t, err)
				continue
			}
			if r.Base64 && (r.Version < V121 || !r.Version.Known()) {
				t.Fatalf("base64 request with version %d accepted", r.Version)
			}
			reqRoundTrip(t, &r)
		}
	})
}

func FuzzBasicAuth(f *testing.F) {
	for _, c := range reqTestdataCases(f) {
		if a := c.headers[HeaderAuthorization]; a != "" {
			f.Add(a)
		}
	}
	for _, s := range []string{`CORP\jdoe:pw`, "jdoe@corp.example.com:p:w", ":", "a:", "jdoe", "\x00:x"} {
		f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte(s)))
	}
	f.Add("Bearer abc")
	f.Add("Basic")
	f.Fuzz(func(t *testing.T, auth string) {
		const q = "Cmd=Sync&DeviceId=D1&DeviceType=T"
		var r Request
		err := r.Parse([]byte("POST"), []byte(reqPath), []byte(q), reqHeaders(HeaderAuthorization, auth))
		if err != nil {
			reqCheckErr(t, err)
			if !errors.Is(err, ErrBadAuthorization) && !errors.Is(err, ErrOversize) {
				t.Fatalf("unexpected error for an Authorization problem: %v", err)
			}
			if r.Password() != nil {
				t.Fatal("password kept after an error")
			}
			return
		}
		if len(auth) > 0 && len(r.AuthScheme) == 0 && auth[0] != ' ' && auth[0] != '\t' {
			t.Fatalf("no scheme recorded for %q", auth)
		}
		if !equalFoldASCII(r.AuthScheme, "Basic") {
			if r.AuthLogin != nil || r.Password() != nil {
				t.Fatal("identity from a non-Basic scheme")
			}
			return
		}
		if len(r.AuthLogin) == 0 {
			t.Fatal("Basic accepted with an empty user")
		}
		if len(r.AuthUser) > 0 && !SameUser(r.AuthLogin, r.AuthLogin) {
			t.Fatalf("SameUser(%q, itself) = false", r.AuthLogin)
		}
		cred := append(append(append([]byte{}, r.AuthLogin...), ':'), r.Password()...)
		again := "Basic " + base64.StdEncoding.EncodeToString(cred)
		var r2 Request
		if err := r2.Parse([]byte("POST"), []byte(reqPath), []byte(q), reqHeaders(HeaderAuthorization, again)); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if string(r2.AuthLogin) != string(r.AuthLogin) || string(r2.AuthUser) != string(r.AuthUser) ||
			string(r2.AuthDomain) != string(r.AuthDomain) || string(r2.Password()) != string(r.Password()) {
			t.Fatalf("round trip changed the identity")
		}
	})
}
