package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/policy/store"
	"github.com/easgate/easgate/policy/store/postgres"
	"github.com/easgate/easgate/proxy/access"
	"github.com/easgate/easgate/proxy/config"
)

// `easgate state migrate` and `easgate state copy`: the shared state
// database (state.url) of several nodes.
func init() {
	commands["state"] = command{"migrate | copy: the shared state database (state.url) of several nodes", runState}
}

const stateUsage = `Usage: easgate state <verb> [flags]
Verbs:
  migrate   apply the schema migrations this easgate needs to the database of
            state.url: --config FILE, or --url URL [--password-file F]
  copy      move a single node's state file into the database:
            --from STATE_FILE, and --config FILE or --to URL [--password-file F];
            refuses a database that already holds records unless --overwrite
The password comes from --password-file (state.password_file), or from the
standard PGPASSWORD / PGPASSFILE / ~/.pgpass; TLS from sslmode and
sslrootcert in the URL (or PGSSLMODE, PGSSLROOTCERT).
`

func runState(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, stateUsage)
		if len(args) == 0 {
			return &exitError{code: 2, err: errors.New("state: name a verb: migrate or copy")}
		}
		return nil
	}
	switch args[0] {
	case "migrate":
		return runStateMigrate(args[1:], stdout, stderr)
	case "copy":
		return runStateCopy(args[1:], stdout, stderr)
	}
	return &exitError{code: 2, err: fmt.Errorf("state: unknown verb %q (want migrate or copy)", args[0])}
}

// stateTarget reads the database settings from --config or --url.
func stateTarget(cfgPath, url, pwFile string, stderr io.Writer) (postgres.Config, error) {
	if cfgPath != "" {
		if url != "" {
			return postgres.Config{}, &exitError{code: 2, err: errors.New("give --config or the URL, not both")}
		}
		cfg, err := loadConfig(cfgPath, stderr)
		if err != nil {
			return postgres.Config{}, err
		}
		if cfg.State.URL == "" {
			return postgres.Config{}, &exitError{code: 1, err: fmt.Errorf("%s: state.url is not set", cfgPath)}
		}
		pc := access.StoreConfig(&cfg.State, false)
		if pwFile != "" {
			pc.PasswordFile = pwFile
		}
		return pc, nil
	}
	if url == "" {
		return postgres.Config{}, &exitError{code: 2, err: errors.New("name the database: --config FILE or the URL")}
	}
	return postgres.Config{URL: url, PasswordFile: pwFile}, nil
}

func runStateMigrate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("state migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the config file: state.url and state.password_file")
	url := fs.String("url", "", "the database URL (postgres://USER@HOST/DB?sslmode=verify-full)")
	pw := fs.String("password-file", "", "file holding the database password")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	pc, err := stateTarget(*cfgPath, *url, *pw, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	from, to, err := postgres.Migrate(ctx, pc, 0)
	if err != nil {
		return err
	}
	if from == to {
		fmt.Fprintf(stdout, "state database: schema version %d, nothing to do\n", to)
	} else {
		fmt.Fprintf(stdout, "state database: schema migrated from version %d to %d\n", from, to)
	}
	return nil
}

func runStateCopy(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("state copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the single node's state file (state.path)")
	cfgPath := fs.String("config", "", "the config file naming the database (state.url)")
	to := fs.String("to", "", "the database URL")
	pw := fs.String("password-file", "", "file holding the database password")
	overwrite := fs.Bool("overwrite", false, "write into a database that already holds records")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if *from == "" {
		return &exitError{code: 2, err: errors.New("state copy: --from STATE_FILE is required")}
	}
	if _, err := os.Stat(*from); err != nil {
		return fmt.Errorf("state copy: %w", err)
	}
	pc, err := stateTarget(*cfgPath, *to, *pw, stderr)
	if err != nil {
		return err
	}
	src, err := store.Open(*from, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pc.Migrate, pc.ReadOnly, pc.Offline, pc.Snapshot = true, false, false, nil
	pc.QueueLimit = 1 << 30
	dst, err := postgres.Open(ctx, pc)
	if err != nil {
		return err
	}
	defer dst.Close()
	if n, err := dst.Count(ctx); err != nil {
		return err
	} else if n > 0 && !*overwrite {
		return &exitError{code: 1, err: fmt.Errorf("state copy: the database already holds %d records (another node's state?); add --overwrite to write into it anyway", n)}
	}
	dst.Start()
	buckets, err := src.Buckets()
	if err != nil {
		return err
	}
	total := 0
	for _, b := range buckets {
		if b == policy.BucketVerdicts {
			// Each node keeps its verdict-cache snapshot in its own state.path.
			fmt.Fprintf(stdout, "%-12s skipped (each node keeps its own verdict snapshot)\n", b)
			continue
		}
		n := 0
		puts := map[string][]byte{}
		err := src.ForEach(b, func(k, v []byte) error {
			puts[string(k)] = append([]byte(nil), v...)
			n++
			if len(puts) == 5000 {
				if err := dst.Update(b, puts, nil); err != nil {
					return err
				}
				puts = map[string][]byte{}
			}
			return nil
		})
		if err == nil {
			err = dst.Update(b, puts, nil)
		}
		if err != nil {
			return fmt.Errorf("state copy: bucket %s: %w", b, err)
		}
		fmt.Fprintf(stdout, "%-12s %d records\n", b, n)
		total += n
	}
	if err := dst.Sync(ctx); err != nil {
		return fmt.Errorf("state copy: %w", err)
	}
	fmt.Fprintf(stdout, "copied %d records from %s to the state database\n", total, *from)
	return nil
}

// stateName names the state store for messages: the file, or the
// database URL without its password.
func stateName(s *config.State) string {
	if s.URL != "" {
		return postgres.Config{URL: s.URL}.Redacted()
	}
	return s.Path
}
