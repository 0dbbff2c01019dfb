package bench

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullCASConfig sets every field of FakeCASConfig to a non-zero value, so
// that a field the spec would lose shows up. A field of a kind it does not
// know fails the test: extend it (and check CASSpec carries the field).
func fullCASConfig(t testing.TB) FakeCASConfig {
	var c FakeCASConfig
	v := reflect.ValueOf(&c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), v.Type().Field(i)
		if !sf.IsExported() {
			t.Fatalf("FakeCASConfig.%s is unexported: CASSpec cannot carry it to a subprocess", sf.Name)
		}
		switch f.Kind() {
		case reflect.Int64: // time.Duration
			f.SetInt(int64(i+1)*int64(time.Millisecond) + 7)
		case reflect.Int:
			f.SetInt(int64(100 + i))
		case reflect.Float64:
			f.SetFloat(0.125 * float64(i%7+1))
		case reflect.String:
			f.SetString("v" + sf.Name)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"jdoe": "s3cret-pw", `CORP\asmith`: "p\"w<>&"}))
		default:
			t.Fatalf("FakeCASConfig.%s has kind %s: teach fullCASConfig and check CASSpec carries it", sf.Name, f.Kind())
		}
	}
	return c
}

// TestCASSpecRoundTrip: every FakeCASConfig option survives the trip
// through $EASBENCH_CAS_SPEC unchanged.
func TestCASSpecRoundTrip(t *testing.T) {
	want := CASSpec{Listen: "127.0.0.1:40123", CAS: fullCASConfig(t)}
	enc, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(CASSpecEnv, enc)
	got, err := CASSpecFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", *got, want)
	}
	os.Unsetenv(CASSpecEnv)
	if s, err := CASSpecFromEnv(); s != nil || err != nil {
		t.Errorf("unset: %v, %v", s, err)
	}
}

// TestCASSpecGolden keeps testdata/casspec.json (the fuzz seed) in step
// with the encoding.
func TestCASSpecGolden(t *testing.T) {
	enc, err := CASSpec{Listen: "127.0.0.1:40123", CAS: FakeCASConfig{Latency: 2 * time.Millisecond, FailRate: 0.01,
		Messages: 50, MessageSize: 2048, AttachmentSize: 65536, PingChangeEvery: 10 * time.Minute, TimeScale: 60,
		MaxHeartbeat: 3540 * time.Second, Users: map[string]string{"u0001": "pw1", "u0002": "pw2"}}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "casspec.json", []byte(enc+"\n"))
}

func TestParseCASSpecErrors(t *testing.T) {
	const secret = "hunter2-secret"
	tests := []struct {
		name, in string
		field    string
		offset   int64 // -2: any
		msg      string
	}{
		{"empty", "", "", 0, "empty"},
		{"syntax after a password", `{"listen":"127.0.0.1:1","cas":{"Users":{"jdoe":"` + secret + `"x}}}`, "", 64, "malformed JSON"},
		{"truncated", `{"listen":"127.0.0.1:1","cas":{"Users":{"jdoe":"` + secret, "", -2, "truncated JSON"},
		{"wrong type", `{"listen":"127.0.0.1:1","cas":{"Messages":"many"}}`, "cas.Messages", -2, "cannot hold a JSON string"},
		{"password not a string", `{"listen":"127.0.0.1:1","cas":{"Users":{"jdoe":12}}}`, "cas.Users", -2, "cannot hold a JSON number"},
		{"unknown field", `{"listen":"127.0.0.1:1","cas":{"Latncy":5}}`, "", -2, `unknown field "Latncy"`},
		{"trailing", `{"listen":"127.0.0.1:1","cas":{}} {}`, "", 34, "trailing data"},
		{"no listen", `{"cas":{}}`, "listen", -1, "want host:port"},
		{"listen without port", `{"listen":"127.0.0.1","cas":{}}`, "listen", -1, "want host:port"},
		{"rate above 1", `{"listen":"127.0.0.1:1","cas":{"ResetRate":1.5}}`, "cas.ResetRate", -1, "not a fraction in [0, 1]"},
		{"negative time scale", `{"listen":"127.0.0.1:1","cas":{"TimeScale":-60}}`, "cas.TimeScale", -1, "not a factor"},
		{"too large", `{"listen":"` + strings.Repeat("x", maxCASSpec) + `"}`, "", -1, "more than the"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseCASSpec([]byte(tc.in))
			var se *CASSpecError
			if !errors.As(err, &se) {
				t.Fatalf("got %+v, %v; want a *CASSpecError", s, err)
			}
			if !strings.HasPrefix(se.Field, tc.field) || (tc.offset != -2 && se.Offset != tc.offset) || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("got field %q offset %d msg %q; want field %q offset %d msg ~%q", se.Field, se.Offset, se.Msg, tc.field, tc.offset, tc.msg)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "hunter") {
				t.Errorf("error quotes the password: %v", err)
			}
			if !strings.Contains(err.Error(), CASSpecEnv) {
				t.Errorf("error does not name $%s: %v", CASSpecEnv, err)
			}
		})
	}
	if _, err := (CASSpec{Listen: "x", CAS: FakeCASConfig{}}).Encode(); err == nil {
		t.Error("Encode accepted a listen address without a port")
	}
}

// FuzzParseCASSpec: any input either fails with a *CASSpecError or yields
// a spec that encodes and parses back to itself.
func FuzzParseCASSpec(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "casspec.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"listen":"[::1]:0","cas":{"Users":null}}`))
	f.Add([]byte(`{"listen":"127.0.0.1:1","cas":{"Users":{}},"cas":{"Messages":-1}}`))
	f.Add([]byte(`{"listen":"127.0.0.1:1","cas":{"FailRate":1e-320,"TimeScale":1e308}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ParseCASSpec(in)
		if err != nil {
			var se *CASSpecError
			if !errors.As(err, &se) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		enc, err := s.Encode()
		if err != nil {
			if strings.Contains(err.Error(), "more than the") { // escaping can grow it past the bound
				return
			}
			t.Fatalf("parsed spec does not encode: %v", err)
		}
		back, err := ParseCASSpec([]byte(enc))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v", s, back)
		}
	})
}
