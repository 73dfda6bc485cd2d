package kube

import (
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
)

// firstConn holds back the requests a client sends before it has a
// connection to the apiserver until the first of them has one.
//
// net/http dials a connection for every request that finds none idle,
// and learns only after the TLS handshake (ALPN) that the connection
// speaks HTTP/2 and could have carried them all; it then keeps one and
// closes the others. A command that begins with several requests at once
// (shipper's checks, sent together) paid a TLS handshake for each, on
// both sides: 7 connections for a deploy's first round, where one
// carries everything after it. client-go has no setting for this, and
// http.Transport.MaxConnsPerHost would also bound HTTP/1.1 (DISABLE_HTTP2)
// for the whole run, so the wait is here, and only until the first
// connection is made: GotConn, or the first request's end if it got none
// (each request then dials as before).
type firstConn struct {
	started atomic.Bool   // the first request has gone
	opened  sync.Once     // closes ready
	ready   chan struct{} // closed once the first request has a connection, or gave up
}

func newFirstConn() *firstConn { return &firstConn{ready: make(chan struct{})} }

// open lets the requests held back go.
func (f *firstConn) open() { f.opened.Do(func() { close(f.ready) }) }

// wrap is next with f's wait in front of it.
func (f *firstConn) wrap(next http.RoundTripper) http.RoundTripper {
	return &firstConnTransport{f: f, next: next}
}

type firstConnTransport struct {
	f    *firstConn
	next http.RoundTripper
}

func (t *firstConnTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f := t.f
	if f.started.CompareAndSwap(false, true) {
		defer f.open()
		trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { f.open() }}
		// Both the caller's trace, if any, and this one are called.
		return t.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	}
	select {
	case <-f.ready:
		return t.next.RoundTrip(req)
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
}
