// Package multinode holds easgate's end-to-end tests of several nodes
// sharing their state in PostgreSQL (state.url): two real `easgate serve`
// processes, built by the tests, in front of one fake CAS (bench.FakeCAS)
// on loopback, sharing a database on a private PostgreSQL cluster that the
// tests start (policy/store/postgres/pgtest) and remove. A small
// round-robin TCP balancer in the tests stands for the load balancer.
//
// The tests run only with EASGATE_E2E_MULTINODE=1 (CI sets it in its own
// step); they skip otherwise, and also skip without PostgreSQL's server
// binaries, except under CI=true, where that fails them. The package has no
// code outside its tests and must never be imported. The tests import bench,
// eas and the pgtest helper; easgate itself runs as a subprocess.
package multinode
