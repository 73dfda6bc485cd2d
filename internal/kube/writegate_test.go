package kube

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// gateSetup is a server counting the requests that reach it, by method,
// and a client through g.
func gateSetup(t *testing.T, g *WriteGate) (reads, writes *atomic.Int64, c rest.Interface) {
	t.Helper()
	reads, writes = new(atomic.Int64), new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			reads.Add(1)
		} else {
			writes.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"}}`))
	}))
	t.Cleanup(srv.Close)
	return reads, writes, coreClient(t, srv.URL, "", g.Wrap)
}

func post(c rest.Interface) *rest.Request {
	return c.Post().Namespace("ns").Resource("configmaps").Body([]byte(`{"metadata":{"name":"a"}}`))
}

// TestWriteGateHoldsWritesUntilOpened: reads go at once; a write waits at
// the gate, reaching the server only once it is opened.
func TestWriteGateHoldsWritesUntilOpened(t *testing.T) {
	g := NewWriteGate()
	reads, writes, c := gateSetup(t, g)
	ctx := context.Background()
	if err := get(c, "a").Do(ctx).Error(); err != nil || reads.Load() != 1 {
		t.Fatalf("a GET before the gate opened: %v, %d reads: want it sent", err, reads.Load())
	}
	done := make(chan error, 1)
	go func() { done <- post(c).Do(ctx).Error() }()
	select {
	case <-g.Waiting():
	case <-time.After(5 * time.Second):
		t.Fatal("the POST never waited at the gate")
	}
	time.Sleep(20 * time.Millisecond)
	if n := writes.Load(); n != 0 {
		t.Fatalf("%d writes reached the server before the gate opened", n)
	}
	g.Open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !g.Opened() || writes.Load() != 1 {
		t.Errorf("opened %v, %d writes: want true, 1", g.Opened(), writes.Load())
	}
	if err := post(c).Do(ctx).Error(); err != nil || writes.Load() != 2 {
		t.Errorf("a write after the gate opened: %v, %d writes: want it sent", err, writes.Load())
	}
	g.Shut(errors.New("too late")) // decided already: nothing changes
	if !g.Opened() {
		t.Error("Shut after Open shut the gate")
	}
}

// TestWriteGateShutSendsNothing: a gate shut fails the writes held, and
// every later one, with its reason, and none reaches the server.
func TestWriteGateShutSendsNothing(t *testing.T) {
	g := NewWriteGate()
	_, writes, c := gateSetup(t, g)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- post(c).Do(ctx).Error() }()
	<-g.Waiting()
	why := errors.New("the namespace could not be isolated")
	g.Shut(why)
	if err := <-done; !errors.Is(err, why) {
		t.Errorf("the write held: %v, want %v", err, why)
	}
	if err := c.Delete().Namespace("ns").Resource("configmaps").Name("a").Do(ctx).Error(); !errors.Is(err, why) {
		t.Errorf("a write after Shut: %v, want %v", err, why)
	}
	g.Open() // decided already
	if g.Opened() || writes.Load() != 0 {
		t.Errorf("opened %v, %d writes reached the server: want false, 0", g.Opened(), writes.Load())
	}
}

// TestWriteGateWaitEndsWithTheRequest: a write whose context ends while
// it waits fails with that, unsent.
func TestWriteGateWaitEndsWithTheRequest(t *testing.T) {
	g := NewWriteGate()
	_, writes, c := gateSetup(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := post(c).Do(ctx).Error(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the deadline", err)
	}
	if writes.Load() != 0 {
		t.Errorf("%d writes reached the server", writes.Load())
	}
}
