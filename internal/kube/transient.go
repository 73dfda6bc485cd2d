package kube

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// TransientBackoff paces retries of requests that failed for a reason that
// passes: about 16 s in all, the time an apiserver takes to restart, and
// never past the request's context (the operation's --timeout). The
// transport Options.RESTConfig sets up reads it when a client is made; a
// caller retrying an operation of its own may pace it the same way.
var TransientBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 8, Cap: 4 * time.Second}

// retryTransport retries what client-go does not: a request refused at the
// connection (an apiserver restarting, a load balancer between replicas)
// and a read that lost its connection or met a 5xx (etcd changing
// leader). client-go already waits out 429 and 5xx answers that carry
// Retry-After. Writes are retried only when the connection was refused:
// then the request never reached the apiserver and cannot apply twice. A
// write that may have applied is left to fail; the operation's next run
// repairs what it left (internal/release's repairPending, sweepRoutes).
type retryTransport struct {
	next    http.RoundTripper
	backoff wait.Backoff
	log     *slog.Logger
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.backoff
	for {
		resp, err := t.next.RoundTrip(req)
		if b.Steps <= 1 || !retryable(req, resp, err) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return resp, err // cannot send the body again
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return resp, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		if t.log != nil {
			t.log.Info("retrying", "request", req.Method+" "+req.URL.Path, "after", describe(resp, err))
		}
		select {
		case <-req.Context().Done():
			if err == nil {
				err = req.Context().Err()
			}
			return nil, err
		case <-time.After(b.Step()):
		}
	}
}

// describe names a failure without the URL's query or any header.
func describe(resp *http.Response, err error) string {
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return errno.Error()
		}
		return "connection lost"
	}
	return resp.Status
}

func retryable(req *http.Request, resp *http.Response, err error) bool {
	read := req.Method == http.MethodGet || req.Method == http.MethodHead
	switch {
	case err != nil && errors.Is(err, syscall.ECONNREFUSED):
		return true
	case err != nil:
		return read && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))
	case resp.Header.Get("Retry-After") != "":
		return false // client-go waits these out itself
	}
	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return read && req.URL.Query().Get("watch") != "true"
	}
	return false
}
