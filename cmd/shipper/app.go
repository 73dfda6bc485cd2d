package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// Exit codes, the contract documented in README.md.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError marks bad input: the CLI exits with exitUsage and nothing was
// changed in the cluster.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "shipper",
		Usage:     "preview deployments of every commit on plain Kubernetes",
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			versionCommand,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("unknown command %q: run 'shipper --help' for the list", c.Args().First())}
			}
			return cli.ShowAppHelp(c)
		},
		// Errors are printed once, by run, in the house format.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		HideVersion: true,
	}
}

// run executes the CLI and maps its outcome to an exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "shipper: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailed
}
