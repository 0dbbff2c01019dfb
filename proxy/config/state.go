package config

import (
	"net/url"
	"strings"
)

// validateState checks the state section: a postgres URL without a
// password in it (secrets belong in password_file or the PG* environment,
// not in a file that is shown and copied around), and its enums.
func (c *checker) validateState(s *State) {
	if s.URL == "" {
		for _, f := range []struct {
			path string
			set  bool
		}{{"state.password_file", s.PasswordFile != ""}, {"state.schema", s.Schema != ""},
			{"state.offline_start", s.OfflineStart != ""}, {"state.queue_limit", s.QueueLimit != 0}} {
			if f.set {
				c.errf(f.path, "set state.url, or remove "+f.path, "only applies to a shared state database (state.url)")
			}
		}
		return
	}
	if strings.Contains(s.URL, "://") {
		u, err := url.Parse(s.URL)
		switch {
		case err != nil:
			c.errf("state.url", "write it as postgres://USER@HOST:5432/DATABASE?sslmode=verify-full", "not a valid URL")
		case u.Scheme != "postgres" && u.Scheme != "postgresql":
			c.errf("state.url", "write it as postgres://USER@HOST:5432/DATABASE?sslmode=verify-full", "scheme %q is not postgres", u.Scheme)
		default:
			if _, has := u.User.Password(); has {
				c.errf("state.url", "put the password in state.password_file (or PGPASSWORD / ~/.pgpass) and remove it from the URL",
					"the URL contains a password")
			}
		}
	} else if !strings.Contains(s.URL, "=") {
		c.errf("state.url", "write it as postgres://USER@HOST:5432/DATABASE?sslmode=verify-full", "not a postgres URL")
	} else if strings.Contains(s.URL, "password=") {
		c.errf("state.url", "put the password in state.password_file (or PGPASSWORD / ~/.pgpass)", "the connection string contains a password")
	}
	if s.Schema != "" {
		c.enum("state.schema", s.Schema, "apply", "check")
	}
	if s.OfflineStart != "" {
		c.enum("state.offline_start", s.OfflineStart, "refuse", "snapshot")
		if s.OfflineStart == "snapshot" && s.Path == "" {
			c.errf("state.offline_start", "set state.path (the local snapshot), or use offline_start: refuse",
				"snapshot needs state.path")
		}
	}
	if s.QueueLimit < 0 {
		c.errf("state.queue_limit", "use a positive number of records, e.g. 200000", "must not be negative")
	}
}
