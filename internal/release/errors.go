package release

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shipper-dev/shipper/internal/kube"
)

// UsageError is bad input: a name, a SHA, a value. Nothing was changed in
// the cluster when an operation returns one; the CLI exits with code 2.
// Its BadInput method is the mark the CLI maps, shared with
// internal/image's InputError.
type UsageError struct {
	// Input names what was wrong ("app name", "--sha"), Value quotes it
	// and Rule says what a good one looks like.
	Input, Value, Rule string
	// Err, when set, is a sentinel the caller can test with errors.Is.
	Err error
}

// Unwrap returns e.Err.
func (e *UsageError) Unwrap() error { return e.Err }

// BadInput marks e as the caller's mistake, not the cluster's.
func (e *UsageError) BadInput() bool { return true }

// ErrNoProduction is wrapped by the usage error of an operation that needs
// a production release when the app has none.
var ErrNoProduction = errors.New("no production release")

func (e *UsageError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Input, e.Value, e.Rule)
}

// IsUsage reports whether err is, or wraps, a *UsageError.
func IsUsage(err error) bool {
	var ue *UsageError
	return errors.As(err, &ue)
}

// RolloutError says why a commit's pods did not become available: the
// release, and (kube.RolloutError) which pod, the reason (ImagePullBackOff,
// CrashLoopBackOff, Unschedulable, ...), the message Kubernetes gave, and
// the container's last log lines.
type RolloutError struct {
	Release string
	*kube.RolloutError
}

func (e *RolloutError) Error() string { return "release " + e.Release + " " + e.RolloutError.Error() }

// Unwrap returns the kube.RolloutError.
func (e *RolloutError) Unwrap() error { return e.RolloutError }

// firstLine is s up to its first newline: a multi-line error where one
// line fits (a Helm status description, a usage error's value).
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
