package kube

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// Requests counts the API requests a command sends, each attempt of a
// retried one included, as the client sees them: the figure `shipper -v`
// prints at the end and the scale benchmark reports per operation.
type Requests struct{ n atomic.Int64 }

// Count is the number of requests sent so far.
func (r *Requests) Count() int64 {
	if r == nil {
		return 0
	}
	return r.n.Load()
}

// traceTransport counts every request that reaches the wire and, when the
// logger is at debug level (-v), logs it with its answer and time: method,
// path and status only, never the query, a header or a body (a Secret's
// data travels in bodies; a token in a header).
type traceTransport struct {
	next  http.RoundTripper
	count *Requests
	log   *slog.Logger
}

func (t *traceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.count != nil {
		t.count.n.Add(1)
	}
	if t.log == nil || !t.log.Enabled(req.Context(), slog.LevelDebug) {
		return t.next.RoundTrip(req)
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	took := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		t.log.Log(context.Background(), slog.LevelDebug, "api", "request", req.Method+" "+req.URL.Path, "error", describe(nil, err), "ms", took)
	} else {
		t.log.Log(context.Background(), slog.LevelDebug, "api", "request", req.Method+" "+req.URL.Path, "status", resp.StatusCode, "ms", took)
	}
	return resp, err
}
