package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/easgate/easgate/proxy"
	"github.com/easgate/easgate/proxy/config"
)

func runCheckConfig(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("check-config", "[--no-files] FILE", stderr)
	noFiles := fs.Bool("no-files", false, "do not check that the files the config names exist (useful on a workstation)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("give exactly one config file")}
	}
	path := fs.Arg(0)
	cfg, err := config.Load(path)
	var errs config.Errors
	if err != nil {
		if !errors.As(err, &errs) {
			return err
		}
	} else if !*noFiles {
		errs = cfg.CheckFiles()
		errs = append(errs, proxy.CheckKerberosKeytab(cfg)...) // the keytab's keys (issue 17)
	}
	if cfg != nil {
		for _, w := range cfg.Warnings() {
			fmt.Fprintln(stdout, "warning: "+w.Error())
		}
	}
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stdout, e.Error())
		}
		return &exitError{code: 1, err: fmt.Errorf("%s: %d error(s)", path, len(errs))}
	}
	fmt.Fprintf(stdout, "%s: OK\n", path)
	return nil
}
