package image

import "fmt"

// InputError is a problem with the build context or the options: a file
// that cannot be read, a symlink out of the context, a bad reference. The
// CLI reports it as bad input (exit code 2). Nothing was pushed.
type InputError struct {
	// Path or reference the problem is about.
	Path string
	Err  error
}

func (e *InputError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *InputError) Unwrap() error { return e.Err }

// BadInput marks e as the caller's mistake, as internal/release's
// UsageError is marked: the CLI maps both to exit code 2 in one place.
func (e *InputError) BadInput() bool { return true }
