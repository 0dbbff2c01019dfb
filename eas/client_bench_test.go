package eas

import "testing"

type clientBenchCase struct {
	name       string
	ua         []byte
	deviceType []byte
	info       *DeviceInfo
}

// clientBenchCases are the hot-path shapes: legacy and current iOS Mail,
// Samsung Email and Outlook mobile with DeviceInformation.
func clientBenchCases() []clientBenchCase {
	return []clientBenchCase{
		{"ios-legacy", []byte("Apple-iPhone4C1/1002.329"), []byte("iPhone"), nil},
		{"ios-legacy-suffix", []byte("Apple-iPod5C1/1102.55400001"), []byte("iPod"), &DeviceInfo{OS: "iOS 7.0.4"}},
		{"ios-new", []byte("iOS/18.0 (22A3354) dataaccessd/1.0"), []byte("iPhone"),
			&DeviceInfo{Model: "iPhone17C1", OS: "iOS 18.0 22A3354"}},
		{"samsung", []byte("SAMSUNG-SM-N900V/101.403"), []byte("SAMSUNGSMN900V"), &DeviceInfo{OS: "Android 10", Model: "SM-N900V"}},
		{"outlook-mobile", []byte("Outlook-iOS-Android/1.0"), []byte("Outlook"),
			&DeviceInfo{Model: "Outlook for iOS and Android", OS: "iOS 17.5"}},
		{"windows-mail", []byte("MSFT-WIN-3/10.0.22621"), []byte("WindowsMail"), nil},
	}
}

func BenchmarkIdentify(b *testing.B) {
	for _, tt := range clientBenchCases() {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tt.ua)))
			var sink Client
			for b.Loop() {
				sink = Identify(tt.ua, tt.deviceType, tt.info)
			}
			if sink.Family == FamilyUnknown {
				b.Fatal("not identified")
			}
		})
	}
}

func BenchmarkIOSBuildLookup(b *testing.B) {
	key, _ := clientIOSBuildKey([]byte("20F75"))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := clientLookupIOSBuild(key); !ok {
			b.Fatal("not found")
		}
	}
}

// BenchmarkIdentifyBeforeAfter runs the same requests through the classifier
// as it was before the rules file (a switch, client_legacy_test.go) and
// through the embedded rules, in one run, so the two can be compared.
func BenchmarkIdentifyBeforeAfter(b *testing.B) {
	cases := clientBenchCases()
	b.Run("before", func(b *testing.B) {
		b.ReportAllocs()
		var sink Client
		for b.Loop() {
			for i := range cases {
				sink = legacyIdentify(cases[i].ua, cases[i].deviceType, cases[i].info)
			}
		}
		if sink.Family == FamilyUnknown {
			b.Fatal("not identified")
		}
	})
	rs := DefaultRules()
	b.Run("after", func(b *testing.B) {
		b.ReportAllocs()
		var sink Client
		for b.Loop() {
			for i := range cases {
				sink = rs.Identify(cases[i].ua, cases[i].deviceType, cases[i].info)
			}
		}
		if sink.Family == FamilyUnknown {
			b.Fatal("not identified")
		}
	})
}

// BenchmarkRulesLoad is the cost of (re)loading the rules at start-up and
// on every config reload: parse and compile the embedded file plus a small
// administrator's file.
func BenchmarkRulesLoad(b *testing.B) {
	data := []byte(adminRules)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewRules("site.rules", data); err != nil {
			b.Fatal(err)
		}
	}
}
