package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"
	"k8s.io/klog/v2"

	"github.com/shipper-dev/shipper/internal/image"
	"github.com/shipper-dev/shipper/internal/release"
)

// Exit codes, the contract documented in README.md.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitUnreachable = 3
)

// usageError marks bad input: the CLI exits with exitUsage and nothing was
// changed in the cluster or registry.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// unreachableError marks a cluster or registry that could not be reached
// or refused the credentials: exitUnreachable.
type unreachableError struct{ err error }

func (e unreachableError) Error() string { return e.err.Error() }
func (e unreachableError) Unwrap() error { return e.err }

func onUsageError(_ *cli.Context, err error, _ bool) error { return usageError{err} }

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "shipper",
		Usage:     "preview deployments of every commit on plain Kubernetes",
		Writer:    stdout,
		ErrWriter: stderr,
		Flags:     globalFlags(),
		Commands: []*cli.Command{
			packageCommand(),
			deployCommand(),
			promoteCommand(),
			rollbackCommand(),
			deleteCommand(),
			listCommand(),
			statusCommand(),
			renderCommand(),
			versionCommand(),
			completionCommand(),
		},
		EnableBashCompletion: true,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("unknown command %q: run 'shipper --help' for the list", c.Args().First())}
			}
			return cli.ShowAppHelp(c)
		},
		Before: func(c *cli.Context) error {
			// client-go logs through klog (leader election, warnings):
			// nowhere unless -v routes it into the progress log (logger).
			klog.LogToStderr(false)
			klog.SetOutput(io.Discard)
			return nil
		},
		// Errors are printed once, by run, in the house format.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		HideVersion:    true,
	}
}

// logger is the progress logger of the command: one line per event on
// stderr, debug events and client-go's klog lines too with -v.
func logger(c *cli.Context) *slog.Logger {
	if l, ok := c.App.Metadata["log"].(*slog.Logger); ok {
		return l
	}
	l := newLogger(c.App.ErrWriter, c.Bool("verbose"))
	if c.Bool("verbose") {
		klog.SetSlogLogger(l)
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata["log"] = l
	return l
}

// imageError maps internal/image errors to exit codes.
func imageError(doing string, err error) error {
	var ie *image.InputError
	switch {
	case errors.As(err, &ie):
		return usageError{fmt.Errorf("%s: %w", doing, err)}
	case image.Unauthorized(err):
		return unreachableError{fmt.Errorf("%s: %w", doing, err)}
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// run executes the CLI and maps its outcome to an exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return report(newApp(stdout, stderr).RunContext(ctx, args), stderr)
}

// report prints err as one line, plus hint lines where they help, and
// returns the exit code.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "shipper: %v\n", err)
	var rollout *release.RolloutError
	if errors.As(err, &rollout) && len(rollout.Logs) > 0 {
		fmt.Fprintf(stderr, "hint: last log lines of pod %s:\n", rollout.Pod)
		for _, l := range rollout.Logs {
			fmt.Fprintf(stderr, "  %s\n", l)
		}
	}
	var ue usageError
	var re unreachableError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &re):
		return exitUnreachable
	}
	return exitFailed
}
