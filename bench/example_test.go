package bench_test

import (
	"fmt"

	"github.com/easgate/easgate/bench"
)

// A fake Exchange CAS and one simulated iPhone running the real life cycle
// against it: OPTIONS, two-phase Provision, Settings, FolderSync and the
// Inbox Sync until MoreAvailable ends.
func ExampleFakeCAS() {
	cas := bench.NewFakeCAS(bench.FakeCASConfig{Messages: 40})
	url, err := cas.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer cas.Close()

	phone := bench.NewDevice(bench.DeviceConfig{
		Target:   url,
		User:     "jdoe",
		Password: "secret",
		DeviceID: "ApplF17XQ3K1N72J",
		Profile:  bench.Profiles["ios"],
	})
	if err := phone.Setup(); err != nil {
		panic(err)
	}
	cas.Deliver("jdoe", 2)
	status, folders, _ := phone.Ping(480)
	fmt.Println("synced:", phone.Items, "provisioned:", cas.Stats().Provisioned)
	fmt.Println("ping status:", status, "folders:", folders)
	// Output:
	// synced: 40 provisioned: 1
	// ping status: 2 folders: [5]
}
