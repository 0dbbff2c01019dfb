//go:build race

package kerberos_test

// raceBuild: the tests run with -race, so easgate is built with -race too.
const raceBuild = true
