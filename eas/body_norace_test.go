//go:build !race

package eas

// bodyRace is true under -race, where sync.Pool drops items at random and
// allocation counts are meaningless.
const bodyRace = false
