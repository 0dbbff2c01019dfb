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
