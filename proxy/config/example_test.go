package config_test

import (
	"fmt"

	"github.com/easgate/easgate/proxy/config"
)

func ExampleParse() {
	cfg, err := config.Parse("easgate.yaml", []byte(`
listen:
  tls: {certificate: /etc/easgate/gw.pem, key: /etc/easgate/gw.key}
upstreams:
  servers:
    - url: https://cas1.corp.example.com
  timeouts:
    long_poll_max: 3660s
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Upstreams.Servers[0].URL, cfg.Upstreams.Timeouts.LongPollMax, cfg.Limits.MaxRequestBody)

	_, err = config.Parse("broken.yaml", []byte(`
listen:
  adress: ":443"
upstreams:
  servers:
    - url: https://cas1.corp.example.com/owa
  timeouts:
    request: 12 parsecs
`))
	fmt.Println(err)
	// Output:
	// https://cas1.corp.example.com 1h1m0s 64MiB
	// broken.yaml:2:1: listen.tls.certificate: missing: TLS needs a server certificate (hint: set listen.tls.certificate and key, or pfx; or plain_http: true behind a TLS load balancer)
	// broken.yaml:3:3: listen.adress: unknown key (hint: did you mean "address"?)
	// broken.yaml:6:12: upstreams.servers[0].url: the URL must not have a path, query or fragment (hint: give only scheme://host[:port]; easgate forwards the request's own path)
	// broken.yaml:8:14: upstreams.timeouts.request: invalid duration "12 parsecs" (hint: use Go syntax such as 90s, 15m)
}
