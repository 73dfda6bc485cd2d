package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"

	"github.com/urfave/cli/v2"
	"k8s.io/klog/v2"

	"github.com/shipper-dev/shipper/internal/image"
	"github.com/shipper-dev/shipper/internal/kube"
	"github.com/shipper-dev/shipper/internal/release"
)

// Exit codes, the contract documented in docs/commands.md.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitUnreachable = 3
)

// badInput is the mark that internal/release's and internal/kube's
// UsageError, internal/image's InputError and the CLI's own usageError
// share: the input was wrong, nothing was changed, exit code 2.
type badInput interface{ BadInput() bool }

// usageError is bad input found by the CLI itself: a flag it cannot parse,
// a required value that is empty.
type usageError struct{ err error }

func (e usageError) Error() string  { return e.err.Error() }
func (e usageError) Unwrap() error  { return e.err }
func (e usageError) BadInput() bool { return true }

func usageErrorf(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// onUsageError receives urfave/cli's and the flag package's parse errors,
// which quote the value they could not parse, some twice ("could not parse
// \"…\" as duration value from environment variable \"SHIPPER_TIMEOUT\" for
// flag timeout: time: invalid duration \"…\""): a secret put in the wrong
// variable would reach the job log. Every quoted string but a variable's
// name is dropped; the flag and the reason stay.
func onUsageError(_ *cli.Context, err error, _ bool) error {
	msg := quoted.ReplaceAllStringFunc(err.Error(), func(q string) string {
		if envName.MatchString(q) {
			return q
		}
		return "(value not shown)"
	})
	return usageError{errors.New(msg)}
}

var (
	// quoted matches a Go-quoted string, as %q writes it.
	quoted  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	envName = regexp.MustCompile(`^"[A-Z][A-Z0-9_]*"$`)
)

// exitCode maps an outcome to an exit code, in this one place.
func exitCode(err error) int {
	var bad badInput
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &bad) && bad.BadInput():
		return exitUsage
	case kube.Unreachable(err) || image.Unauthorized(err):
		return exitUnreachable
	}
	return exitFailed
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
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
			pruneCommand(),
			listCommand(),
			statusCommand(),
			renderCommand(),
			gateCommand(),
			shareCommand(),
			versionCommand(),
			completionCommand(),
		},
		EnableBashCompletion: true,
		// urfave/cli splits slice flags on commas, before shipper sees them:
		// `--set env.DB_PASSWORD=a,b` would become two --set items, the
		// second one holding the tail of a secret. Helm's --set syntax owns
		// commas; lists that commas separate are split where they are read
		// (commaList).
		DisableSliceFlagSeparator: true,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("unknown command %q: run 'shipper --help' for the list", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Before: func(c *cli.Context) error {
			// client-go logs through klog (leader election, warnings): to
			// nowhere unless -v routes it into the progress log (logger).
			// A logger, not klog.SetOutput: klog copies errors to stderr
			// whatever its output is (its stderrthreshold).
			klog.SetSlogLogger(slog.New(slog.DiscardHandler))
			return nil
		},
		// Errors are printed once, by run, in the house format.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		HideVersion:    true,
	}
	// Every command checks the flags it takes before it does anything,
	// each flag the same way wherever it is taken (checks.go).
	for _, cmd := range app.Commands {
		cmd.Before = checkFlags
	}
	return app
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

// run executes the CLI and maps its outcome to an exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	return report(app.RunContext(ctx, hoistGlobalFlags(app, args)), stderr)
}

// report prints err as one line, plus hint lines where they help, and
// returns the exit code.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "shipper: %v\n", err)
	var rollout *release.RolloutError
	if errors.As(err, &rollout) && rollout.NeverStarted {
		fmt.Fprintf(stderr, "hint: the container of pod %s never started, so it has no logs\n", rollout.Pod)
	}
	if errors.As(err, &rollout) && len(rollout.Logs) > 0 {
		fmt.Fprintf(stderr, "hint: last log lines of pod %s:\n", rollout.Pod)
		for _, l := range rollout.Logs {
			fmt.Fprintf(stderr, "  %s\n", l)
		}
	}
	return exitCode(err)
}
