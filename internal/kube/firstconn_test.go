package kube

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
)

// concurrentStart sends n requests at once through a client of cfg to
// srv, which counts its connections, and returns that count.
func concurrentStart(t *testing.T, n int, opts func(url, ca string) *rest.Config) int64 {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.Write([]byte("{}"))
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	client, err := rest.HTTPClientFor(opts(srv.URL, ca))
	if err != nil {
		t.Fatal(err)
	}
	var g errgroup.Group
	var start sync.WaitGroup
	start.Add(1)
	for range n {
		g.Go(func() error {
			start.Wait()
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/api", nil)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("answered over %s, want HTTP/2", resp.Proto)
			}
			return resp.Body.Close()
		})
	}
	start.Done()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return conns.Load()
}

// TestConcurrentFirstRequestsShareOneConnection: requests sent at once
// before the client has a connection wait for the first one's, so a
// command's first round costs one TLS handshake, not one per request
// (firstConn). A plain client-go config, beside it, shows what net/http
// does without the wait (logged: how many it dials depends on timing).
func TestConcurrentFirstRequestsShareOneConnection(t *testing.T) {
	got := concurrentStart(t, 8, func(url, ca string) *rest.Config {
		cfg, err := Options{URL: url, CAData: ca}.RESTConfig()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	})
	if got != 1 {
		t.Errorf("8 requests sent at once opened %d connections, want 1", got)
	}
	plain := concurrentStart(t, 8, func(url, ca string) *rest.Config {
		return &rest.Config{Host: url, TLSClientConfig: rest.TLSClientConfig{CAData: []byte(ca)}}
	})
	t.Logf("without the wait: %d connections for the same 8 requests", plain)
}

// TestFirstConnLetsWaitersGoWhenTheFirstFails: a first request that gets
// no connection (nothing listens) does not hold the others: each fails
// on its own, promptly.
func TestFirstConnLetsWaitersGoWhenTheFirstFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // refused from now on
	f := newFirstConn()
	client := &http.Client{Transport: f.wrap(&http.Transport{})}
	var g errgroup.Group
	for range 4 {
		g.Go(func() error {
			resp, err := client.Get("http://" + addr + "/")
			if err == nil {
				resp.Body.Close()
				t.Errorf("a request to a closed port succeeded")
			}
			return nil
		})
	}
	done := make(chan struct{})
	go func() { g.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("requests behind a first one that failed to connect still wait after 10 s")
	}
}
