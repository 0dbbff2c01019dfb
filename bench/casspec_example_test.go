package bench_test

import (
	"fmt"
	"time"

	"github.com/easgate/easgate/bench"
)

// Compare hands a fake CAS subprocess its address and every option in
// $EASBENCH_CAS_SPEC; `easbench upstream` reads it back.
func ExampleCASSpec() {
	enc, err := bench.CASSpec{Listen: "127.0.0.1:40123", CAS: bench.FakeCASConfig{
		Latency: 2 * time.Millisecond, Messages: 20, TimeScale: 60}}.Encode()
	if err != nil {
		panic(err)
	}
	spec, err := bench.ParseCASSpec([]byte(enc))
	if err != nil {
		panic(err)
	}
	fmt.Println(spec.Listen, spec.CAS.Latency, spec.CAS.Messages, spec.CAS.TimeScale)

	_, err = bench.ParseCASSpec([]byte(`{"listen":"127.0.0.1:40123","cas":{"FailRate":3}}`))
	fmt.Println(err)
	// Output:
	// 127.0.0.1:40123 2ms 20 60
	// fake CAS spec ($EASBENCH_CAS_SPEC): field cas.FailRate: 3 is not a fraction in [0, 1]
}
