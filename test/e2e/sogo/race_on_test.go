//go:build race

package sogo_test

// raceBuild: the tests run with -race, so easgate is built with -race too and
// real traffic goes through a race-checked gateway.
const raceBuild = true
