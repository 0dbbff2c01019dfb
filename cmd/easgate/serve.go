package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/easgate/easgate/proxy"
	"github.com/easgate/easgate/proxy/config"
)

// newLogger builds the operational logger from the config's log section.
// The access log is separate (log.access_log) and opened by the proxy.
func newLogger(c config.Log, w io.Writer) zerolog.Logger {
	var out io.Writer = w
	if strings.EqualFold(c.Format, "console") {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	l := zerolog.New(out).With().Timestamp().Logger()
	if lvl, err := zerolog.ParseLevel(strings.ToLower(c.Level)); err == nil && c.Level != "" {
		l = l.Level(lvl)
	}
	return l
}

// loadConfig loads path and prints every error with its position (serve,
// explain, compliance).
func loadConfig(path string, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err == nil {
		return cfg, nil
	}
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(stderr, e.Error())
		}
		return nil, &exitError{code: 1, err: fmt.Errorf("%s: %d error(s)", path, len(errs))}
	}
	return nil, err
}

func runServe(args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := newFlagSet("serve", "--config FILE", stderr)
	cfgPath := fs.String("config", "", "the config file (see examples/easgate.yaml)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--config is required")}
	}
	cfg, err := loadConfig(*cfgPath, stderr)
	if err != nil {
		return err
	}
	if errs := cfg.CheckFiles(); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stderr, e.Error())
		}
		return &exitError{code: 1, err: fmt.Errorf("%s: %d missing or unreadable file(s); nothing started", *cfgPath, len(errs))}
	}
	log := newLogger(cfg.Log, stderr)
	// EASGATE_CPUPROFILE=FILE writes a CPU profile of the whole run (for
	// performance work with easbench; see the README's Performance section).
	if path := os.Getenv("EASGATE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	for _, w := range cfg.Warnings() {
		log.Warn().Msg(w.Error())
	}
	srv, err := proxy.New(cfg, log)
	if err != nil {
		return err
	}
	// SIGINT/SIGTERM: held long polls are answered at once and requests in
	// flight drain (Shutdown); a second signal stops without waiting.
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	ctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go srv.WatchConfig(ctx, *cfgPath)

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	ev := log.Info().Str("listen", cfg.Listen.Address).Str("admin", cfg.Admin.Address).Str("config", *cfgPath)
	if cfg.Admin.Address != "" && !cfg.Admin.Console.Disabled {
		scheme := "http://"
		if cfg.Admin.TLS.Enabled() {
			scheme = "https://"
		}
		ev = ev.Str("console", scheme+dialable(cfg.Admin.Address)+"/")
	}
	ev.Msg("easgate serving")
	var sig os.Signal
	select {
	case err := <-errc:
		return err
	case sig = <-sigc:
	}
	stopWatch()
	log.Info().Stringer("signal", sig).Msg("shutting down (a second signal stops at once)")
	// The drain bound comes from upstreams.timeouts.drain; this outer
	// bound only guards against a stuck connection.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Upstreams.Timeouts.Drain.D()+30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(sctx) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	case sig = <-sigc:
		log.Warn().Stringer("signal", sig).Msg("second signal: stopping now, without waiting for the drain")
		return &exitError{code: 1, err: errors.New("stopped by a second signal before the drain ended")}
	}
	log.Info().Msg("stopped")
	return nil
}
