//go:build race

package proxy

// raceEnabled: the race detector's shadow memory and its random sync.Pool
// drops make RSS measurements meaningless.
const raceEnabled = true
