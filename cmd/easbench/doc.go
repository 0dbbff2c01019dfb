// Command easbench is easgate's load harness: a fake Exchange CAS
// (`easbench upstream`), a fleet of simulated phones (`easbench run`) and a
// side-by-side comparison direct / through easgate / through nginx
// (`easbench compare`). The work is done by package bench; this command
// only parses flags and writes reports.
//
// Typical use, with time running 60 times faster than on a real phone:
//
//	easbench upstream --listen 127.0.0.1:8081 --time-scale 60 --ping-change-every 10m
//	easgate serve --config lab.yaml            # upstream http://127.0.0.1:8081
//	easbench run --target https://127.0.0.1:8443 --ca lab-ca.pem --devices 2000 \
//	    --duration 5m --ramp 1m --time-scale 60 --pid $(pidof easgate) \
//	    --json run.json --html run.html --fail-on-error
//	easbench compare --easgate-bin ./easgate --devices 500 --duration 1m --time-scale 60
//
// Exit codes: 0 success, 1 failure, 2 usage error, 3 errors seen with
// --fail-on-error.
//
// Like bench, easbench reaches easgate over HTTP only (or starts its
// binary): it must never import proxy, policy or certs.
package main
