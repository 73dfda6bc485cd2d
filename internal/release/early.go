package release

// early is a request sent before its answer is needed, so that it goes
// out with the requests before it instead of after them; get waits for
// its answer. The answer is taken where the request used to be made, so
// what an operation refuses, and in which order, does not change. Before
// an operation's checks only reads are sent early (one refused before it
// takes an answer has changed nothing); a write goes early only with
// another write of the same step, which does not depend on it.
type early[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// readEarly sends read now (a read, or a write as said above).
func readEarly[T any](read func() (T, error)) *early[T] {
	e := &early[T]{done: make(chan struct{})}
	go func() {
		defer close(e.done)
		e.v, e.err = read()
	}()
	return e
}

// get waits for the answer. A nil e was not sent early: read is made now.
func (e *early[T]) get(read func() (T, error)) (T, error) {
	if e == nil {
		return read()
	}
	<-e.done
	return e.v, e.err
}
