package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/easgate/easgate/proxy/config"
)

// watchInterval is how often WatchConfig looks at the config file.
const watchInterval = 2 * time.Second

// WatchConfig reloads the configuration from path on SIGHUP and whenever
// the file changes (size, modification time or content hash, polled every
// 2 s), until ctx ends. SIGHUP and SIGUSR1 reopen the access-log file
// (log rotation; ReopenLogs). A file that does not load or does not apply keeps
// the running configuration; every error is logged with its position.
func (s *Server) WatchConfig(ctx context.Context, path string) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// SIGUSR1 only reopens the access log (logrotate's postrotate); SIGHUP
	// reopens it too, then reloads the configuration.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				s.ReopenLogs()
			}
		}
	}()
	s.watchConfig(ctx, path, hup, watchInterval)
}

type fileMark struct {
	size int64
	mod  time.Time
	sum  [32]byte
	ok   bool
}

func markFile(path string) fileMark {
	fi, err := os.Stat(path)
	if err != nil {
		return fileMark{}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fileMark{}
	}
	return fileMark{size: fi.Size(), mod: fi.ModTime(), sum: sha256.Sum256(data), ok: true}
}

func (s *Server) watchConfig(ctx context.Context, path string, hup <-chan os.Signal, every time.Duration) {
	last := markFile(path)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-hup:
			forced = true
			s.ReopenLogs()
		case <-t.C:
		}
		m := markFile(path)
		if !forced && (m == last || (m.ok && last.ok && bytes.Equal(m.sum[:], last.sum[:]))) {
			last = m
			continue
		}
		last = m
		s.reloadFile(path)
	}
}

// reloadFile loads path and applies it, logging every problem.
func (s *Server) reloadFile(path string) bool {
	cfg, err := config.Load(path)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		if es, ok := err.(config.Errors); ok {
			for _, e := range es {
				s.log.Error().Str("config", path).Msg(e.Error())
			}
			// One line that says what happened as a whole, after the details.
			s.log.Error().Str("config", path).Int("errors", len(es)).
				Msgf("configuration reload rejected: %d error(s) in %s; keeping the running configuration", len(es), path)
		} else {
			s.log.Error().Str("config", path).Err(err).Msg("configuration reload rejected: the file could not be loaded; keeping the running configuration")
		}
		return false
	}
	if err := s.Reload(cfg); err != nil {
		s.log.Error().Str("config", path).Err(err).Msg("configuration reload rejected: it could not be applied; keeping the running configuration")
		return false
	}
	return true
}
