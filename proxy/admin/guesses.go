package admin

import (
	"net/netip"
	"sync"
	"time"
)

// Token guessing. An admin token is a long random secret, but an
// administrator may choose a weak one, and the admin listener may be
// reachable from more than one desk. Wrong tokens, sent as a bearer token
// to the API or typed into the console's sign-in form, are counted per
// client address; after GuessLimit of them within GuessWindow the address
// gets 429 with Retry-After, whatever token it sends, until its window
// ends. (A missing token is not a guess and is not counted.)
const (
	GuessLimit  = 10
	GuessWindow = 10 * time.Minute
	// maxGuessers bounds the table: beyond it expired entries are dropped,
	// and an address that still finds no room is not counted (the limit
	// fails open rather than lock the administrators out).
	maxGuessers = 4096
)

type guesser struct {
	n     int
	start time.Time
}

// guesses counts wrong tokens per client address.
type guesses struct {
	mu sync.Mutex
	m  map[netip.Addr]*guesser
}

// wait reports how long addr must wait before its next token is checked
// (0: go ahead).
func (g *guesses) wait(addr netip.Addr, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.m[addr]
	if !ok || e.n < GuessLimit {
		return 0
	}
	end := e.start.Add(GuessWindow)
	if !now.Before(end) {
		delete(g.m, addr)
		return 0
	}
	return end.Sub(now)
}

// failed counts one wrong token from addr and reports whether the address
// has now reached the limit.
func (g *guesses) failed(addr netip.Addr, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[netip.Addr]*guesser{}
	}
	e, ok := g.m[addr]
	if ok && !now.Before(e.start.Add(GuessWindow)) {
		e.n, e.start = 0, now
	}
	if !ok {
		if len(g.m) >= maxGuessers {
			for a, old := range g.m {
				if !now.Before(old.start.Add(GuessWindow)) {
					delete(g.m, a)
				}
			}
			if len(g.m) >= maxGuessers {
				return false
			}
		}
		e = &guesser{start: now}
		g.m[addr] = e
	}
	e.n++
	return e.n == GuessLimit
}

// clientAddr is the address guesses are counted by: the peer's IP, with
// an IPv4-mapped IPv6 address counted as the IPv4 one.
func clientAddr(ip []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// GuessWait reports how long the client at ip must wait before a token it
// sends is checked (0: check it). The console asks before a token sign-in.
func (a *API) GuessWait(ip []byte) time.Duration {
	return a.guesses.wait(clientAddr(ip), a.now())
}

// GuessFailed counts a wrong token from the client at ip (the console,
// after a refused token sign-in) and logs when the address reaches the
// limit.
func (a *API) GuessFailed(ip []byte) {
	addr := clientAddr(ip)
	if a.guesses.failed(addr, a.now()) {
		a.log.Warn().Str("client", addr.String()).Int("wrong_tokens", GuessLimit).Dur("for", GuessWindow).
			Msg("admin: too many wrong tokens from this address: its tokens are not checked until its window ends")
	}
}
