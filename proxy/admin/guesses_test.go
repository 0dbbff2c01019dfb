package admin

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/proxy/config"
)

// tokenGateway is fakeGateway with admin tokens.
type tokenGateway struct {
	*fakeGateway
	tokens []Token
}

func (g tokenGateway) Tokens() []Token { return g.tokens }

func gate(a *API, ip net.IP, token string) *fasthttp.Response {
	var req fasthttp.Request
	req.SetRequestURI("/api/v1/devices")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: ip, Port: 40000}, nil)
	a.Gate(&ctx)
	var out fasthttp.Response
	ctx.Response.CopyTo(&out)
	return &out
}

// TestWrongTokensLimited: the GuessLimit-th wrong bearer token from one
// address is still a 401; from then on that address gets 429 with
// Retry-After, even with the right token, until its window ends. Another
// address is not affected, and a request without a token is not a guess.
func TestWrongTokensLimited(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "op"), []byte("s3cret-operate-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	toks, err := LoadTokens(&config.Admin{Tokens: []config.AdminToken{{Name: "helpdesk", File: filepath.Join(dir, "op"), Role: config.RoleOperate}}})
	if err != nil {
		t.Fatal(err)
	}
	a := New(tokenGateway{newFakeGateway(t), toks}, zerolog.Nop())
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	guesser, desk := net.IPv4(192, 0, 2, 7), net.ParseIP("2001:db8::5")

	for i := 0; i < 30; i++ { // no token at all: refused, never counted
		if r := gate(a, guesser, ""); r.StatusCode() != fasthttp.StatusUnauthorized {
			t.Fatalf("request without a token: %d", r.StatusCode())
		}
	}
	for i := 1; i <= GuessLimit; i++ {
		if r := gate(a, guesser, "guess-"+strconv.Itoa(i)); r.StatusCode() != fasthttp.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i, r.StatusCode())
		}
	}
	r := gate(a, guesser, "s3cret-operate-token")
	if r.StatusCode() != fasthttp.StatusTooManyRequests {
		t.Fatalf("right token after %d wrong ones: %d, want 429", GuessLimit, r.StatusCode())
	}
	if ra, _ := strconv.Atoi(string(r.Header.Peek("Retry-After"))); ra < int(GuessWindow/time.Second) || ra > int(GuessWindow/time.Second)+1 {
		t.Errorf("Retry-After %q, want about %v", r.Header.Peek("Retry-After"), GuessWindow)
	}
	// The same address written as IPv4-mapped IPv6 is the same guesser.
	if r := gate(a, guesser.To16(), "s3cret-operate-token"); r.StatusCode() != fasthttp.StatusTooManyRequests {
		t.Errorf("IPv4-mapped form of a limited address: %d, want 429", r.StatusCode())
	}
	if r := gate(a, desk, "s3cret-operate-token"); r.StatusCode() != fasthttp.StatusOK {
		t.Errorf("another address with the right token: %d, want 200", r.StatusCode())
	}
	now = now.Add(GuessWindow - time.Second)
	if r := gate(a, guesser, "s3cret-operate-token"); r.StatusCode() != fasthttp.StatusTooManyRequests {
		t.Errorf("a second before the window ends: %d, want 429", r.StatusCode())
	}
	now = now.Add(time.Second)
	if r := gate(a, guesser, "s3cret-operate-token"); r.StatusCode() != fasthttp.StatusOK {
		t.Errorf("after the window: %d, want 200", r.StatusCode())
	}
	if r := gate(a, guesser, "guess-again"); r.StatusCode() != fasthttp.StatusUnauthorized {
		t.Errorf("first wrong token of a new window: %d, want 401", r.StatusCode())
	}
}

// TestGuessTableBounded: the table never holds more than maxGuessers
// addresses; expired ones make room, and a new address that finds none is
// not counted (fails open).
func TestGuessTableBounded(t *testing.T) {
	var g guesses
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := 0; i < maxGuessers+100; i++ {
		g.failed(addr(i), t0)
	}
	if len(g.m) != maxGuessers {
		t.Fatalf("%d addresses tracked, want the bound %d", len(g.m), maxGuessers)
	}
	late := addr(maxGuessers + 500)
	for i := 0; i < GuessLimit; i++ {
		g.failed(late, t0.Add(time.Minute))
	}
	if g.wait(late, t0.Add(time.Minute)) != 0 {
		t.Fatal("an address that found no room was limited")
	}
	// Once the first window is over, the old entries make room.
	t1 := t0.Add(GuessWindow)
	for i := 0; i < GuessLimit; i++ {
		g.failed(late, t1)
	}
	if g.wait(late, t1) != GuessWindow {
		t.Fatalf("after expired entries were dropped: wait %v, want %v", g.wait(late, t1), GuessWindow)
	}
	if len(g.m) != 1 {
		t.Fatalf("%d addresses tracked after the purge, want 1", len(g.m))
	}
}
