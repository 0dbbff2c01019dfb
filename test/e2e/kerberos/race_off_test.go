//go:build !race

package kerberos_test

// raceBuild: the tests run without -race; easgate is built without it.
const raceBuild = false
