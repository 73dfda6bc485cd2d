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
