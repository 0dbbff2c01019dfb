//go:build !race

package sogo_test

// raceBuild: the tests run without -race; easgate is built without it.
const raceBuild = false
