package kube

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
)

// WriteGate holds back every write sent through a transport it wraps
// until it is opened: for work started before the operation may change
// anything, whose reads go out at once and whose writes wait. Opened
// with Open, the writes held go out, and every later one at once;
// shut with Shut, each write held, and every later one, fails with the
// reason given, and nothing it would have written is sent. GET, HEAD and
// OPTIONS always go.
//
// The gate is in the transport, below every client built from the
// rest.Config it wraps (Helm's kube client and storage driver, a typed
// clientset), so no write of the work it holds can get past it, whatever
// code path sends it. client-go has no such thing.
type WriteGate struct {
	once    sync.Once
	decided chan struct{} // closed by Open or Shut
	err     error         // nil: opened; read once decided is closed
	waiting chan struct{} // closed when the first write waits
	first   sync.Once
	tried   atomic.Bool // a write came to the gate
}

// NewWriteGate returns a gate, shut to writes until Open or Shut.
func NewWriteGate() *WriteGate {
	return &WriteGate{decided: make(chan struct{}), waiting: make(chan struct{})}
}

// errGateShut is what Shut(nil) makes writes fail with.
var errGateShut = errors.New("write held back, and not to be sent")

// Open lets the writes go. It does nothing once the gate was opened or
// shut.
func (g *WriteGate) Open() { g.decide(nil) }

// Shut makes every write held, and every later one, fail with err
// (errGateShut when nil). It does nothing once the gate was opened or
// shut.
func (g *WriteGate) Shut(err error) {
	if err == nil {
		err = errGateShut
	}
	g.decide(err)
}

func (g *WriteGate) decide(err error) {
	g.once.Do(func() {
		g.err = err
		close(g.decided)
	})
}

// Opened reports whether Open decided the gate.
func (g *WriteGate) Opened() bool {
	select {
	case <-g.decided:
		return g.err == nil
	default:
		return false
	}
}

// Tried reports whether a write came to the gate, whether it waited,
// went or failed there.
func (g *WriteGate) Tried() bool { return g.tried.Load() }

// Waiting is closed once a write has waited at the gate: the work it holds
// got as far as its first write.
func (g *WriteGate) Waiting() <-chan struct{} { return g.waiting }

// Wrap is a rest.Config.Wrap transport middleware: wrapped last, it is the
// outermost, so a write it holds back is neither sent, retried nor
// counted until it goes.
func (g *WriteGate) Wrap(next http.RoundTripper) http.RoundTripper {
	return &gateTransport{g: g, next: next}
}

type gateTransport struct {
	g    *WriteGate
	next http.RoundTripper
}

func (t *gateTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return t.next.RoundTrip(req)
	}
	g := t.g
	g.tried.Store(true)
	select {
	case <-g.decided:
	default:
		g.first.Do(func() { close(g.waiting) })
		select {
		case <-g.decided:
		case <-req.Context().Done():
			return nil, closeBody(req, req.Context().Err())
		}
	}
	if g.err != nil {
		return nil, closeBody(req, g.err)
	}
	return t.next.RoundTrip(req)
}

// closeBody closes the body of req, unsent, and returns err: a
// RoundTripper closes the body, even on error.
func closeBody(req *http.Request, err error) error {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return err
}
