package bench

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/easgate/easgate/eas"
)

// Profile is the identity and habits of one real mail client: the
// User-Agent, DeviceType and DeviceInformation it sends (PROTOCOL.md §5),
// the protocol version and query form it uses.
type Profile struct {
	Name       string // mix key: "ios", "outlook", "gmail", "samsung", "windows"
	UserAgent  string
	DeviceType string
	// DeviceIDPrefix and DeviceIDHex shape generated DeviceIds like the
	// client's own ("Appl" + serial, 32 hex digits, "SEC" + hex...).
	DeviceIDPrefix string
	DeviceIDLen    int
	DeviceIDHex    bool
	Version        eas.Version
	Base64         bool // base64 query form (iOS) instead of the plain form
	Info           eas.DeviceInfo
	BodyType       int  // AirSyncBase body preference (1 text, 2 HTML)
	MultiPart      bool // ItemOperations with MS-ASAcceptMultiPart
}

// Profiles are the clients easbench simulates, keyed by Profile.Name.
var Profiles = map[string]Profile{
	"ios": {
		Name: "ios", UserAgent: "iOS/17.5.1 (21F90) dataaccessd/1.0", DeviceType: "iPhone",
		DeviceIDPrefix: "Appl", DeviceIDLen: 16, Version: eas.V161, Base64: true, BodyType: 2, MultiPart: true,
		Info: eas.DeviceInfo{Model: "iPhone15C2", IMEI: "356789101234567", FriendlyName: "iPhone",
			OS: "iOS 17.5.1 21F90", OSLanguage: "en-US", UserAgent: "iOS/17.5.1 (21F90) dataaccessd/1.0",
			MobileOperator: "Carrier"},
	},
	"outlook": {
		Name: "outlook", UserAgent: "Outlook-iOS-Android/1.0", DeviceType: "Outlook",
		DeviceIDLen: 32, DeviceIDHex: true, Version: eas.V161, BodyType: 2,
		Info: eas.DeviceInfo{Model: "Outlook for iOS and Android", FriendlyName: "Outlook for iOS and Android",
			OS: "iOS 17.5", OSLanguage: "en-US", UserAgent: "Outlook-iOS-Android/1.0"},
	},
	"gmail": {
		Name: "gmail", UserAgent: "Android-Mail/2023.10.29.578385512.Release", DeviceType: "Android",
		DeviceIDPrefix: "androidc", DeviceIDLen: 17, Version: eas.V141, BodyType: 2,
		Info: eas.DeviceInfo{Model: "Pixel 7", OS: "Android 14", OSLanguage: "en-US",
			UserAgent: "Android-Mail/2023.10.29.578385512.Release", FriendlyName: "Pixel 7"},
	},
	"samsung": {
		Name: "samsung", UserAgent: "SAMSUNG-SM-G991B/101.403", DeviceType: "SAMSUNGSMG991B",
		DeviceIDPrefix: "SEC", DeviceIDLen: 16, DeviceIDHex: true, Version: eas.V141, BodyType: 2,
		Info: eas.DeviceInfo{Model: "SM-G991B", IMEI: "352345678901234", FriendlyName: "Galaxy S21 5G",
			OS: "Android 14", OSLanguage: "en-GB", UserAgent: "SAMSUNG-SM-G991B/101.403", MobileOperator: "Carrier"},
	},
	"windows": {
		Name: "windows", UserAgent: "MSFT-WIN-3/10.0.22621", DeviceType: "WindowsMail",
		DeviceIDLen: 32, DeviceIDHex: true, Version: eas.V161, BodyType: 2,
		Info: eas.DeviceInfo{Model: "Surface Laptop 5", FriendlyName: "DESKTOP-7Q2M1LK", OS: "Windows 11",
			OSLanguage: "en-US", UserAgent: "MSFT-WIN-3/10.0.22621"},
	},
}

// DefaultMix is the client mix of `easbench run` without --mix.
var DefaultMix = map[string]int{"ios": 40, "outlook": 30, "gmail": 10, "samsung": 10, "windows": 10}

// ParseMix parses "ios=40,outlook=30,..." into weights; every name must be
// a key of Profiles and every weight a non-negative integer.
func ParseMix(s string) (map[string]int, error) {
	mix := map[string]int{}
	total := 0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("mix: %q: want name=weight", part)
		}
		if _, known := Profiles[name]; !known {
			return nil, fmt.Errorf("mix: unknown client %q (known: %s)", name, strings.Join(profileNames(), ", "))
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("mix: %q: weight must be a non-negative integer", part)
		}
		mix[name] += n
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("mix: %q: weights add up to zero", s)
	}
	return mix, nil
}

func profileNames() []string {
	names := make([]string, 0, len(Profiles))
	for n := range Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// assignProfiles spreads n devices over the mix by largest remainder, in
// a stable order, so a mix of 40/30/10/10/10 over 10 devices gives exactly
// 4/3/1/1/1.
func assignProfiles(mix map[string]int, n int) []Profile {
	names := make([]string, 0, len(mix))
	total := 0
	for name, w := range mix {
		names = append(names, name)
		total += w
	}
	sort.Strings(names)
	out := make([]Profile, 0, n)
	if total == 0 {
		return out
	}
	counts := make(map[string]int, len(names))
	type rem struct {
		name string
		r    int
	}
	var rems []rem
	assigned := 0
	for _, name := range names {
		c := mix[name] * n / total
		counts[name] = c
		assigned += c
		rems = append(rems, rem{name, mix[name] * n % total})
	}
	sort.SliceStable(rems, func(i, j int) bool { return rems[i].r > rems[j].r })
	for i := 0; assigned < n; i++ {
		counts[rems[i%len(rems)].name]++
		assigned++
	}
	// Interleave so a ramp brings every client family up together.
	for len(out) < n {
		for _, name := range names {
			if counts[name] > 0 {
				counts[name]--
				out = append(out, Profiles[name])
			}
		}
	}
	return out
}

// deviceID makes a DeviceId in the client's own style, unique for i.
func (p Profile) deviceID(i int) string {
	const hexDigits = "0123456789ABCDEF"
	const alnum = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
	n := p.DeviceIDLen - len(p.DeviceIDPrefix)
	if n < 4 {
		n = 4
	}
	b := make([]byte, n)
	x := seedFor(fmt.Sprintf("%s/%d", p.Name, i))
	for j := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		if p.DeviceIDHex {
			b[j] = hexDigits[x%16]
		} else if p.DeviceIDPrefix == "androidc" {
			b[j] = '0' + byte(x%10)
		} else {
			b[j] = alnum[x%uint64(len(alnum))]
		}
	}
	// Keep devices distinct whatever the hash did: the index goes last.
	suffix := strconv.Itoa(i)
	if len(suffix) < len(b) {
		copy(b[len(b)-len(suffix):], suffix)
	}
	return p.DeviceIDPrefix + string(b)
}
