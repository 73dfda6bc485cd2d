package release

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestVerifyServingWaitsForTheCommit: verifyServing sends requests for the
// URL's host to Verify.Address until the commit header names the commit
// on an answer of the app's (a 404 counts); it gives up at ctx's end
// naming the last answer.
func TestVerifyServingWaitsForTheCommit(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "myapp.example.com" {
			t.Errorf("request for host %q, want myapp.example.com", r.Host)
		}
		commit := "aaaaaaaa11111111111111111111111111111111"
		if hits.Add(1) > 3 {
			commit = "bbbbbbbb22222222222222222222222222222222"
		}
		w.Header().Set(CommitHeader, commit)
		w.WriteHeader(http.StatusNotFound) // the app's answer does not matter
	}))
	verify := verifying(t, srv)
	if err := verify(10*time.Second, "bbbbbbbb"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if n := hits.Load(); n != 4 {
		t.Errorf("verified after %d requests, want 4 (three answered by the old commit)", n)
	}

	err := verify(500*time.Millisecond, "cccccccc")
	if err == nil || !strings.Contains(err.Error(), `404 from commit "bbbbbbbb2222`) {
		t.Errorf("verify of a commit that never answers: %v, want the last answer named", err)
	}
	c := &Configuration{log: slog.New(slog.DiscardHandler)}
	if err := c.verifyServing(context.Background(), nil, "http://myapp.example.com", "cccccccc"); err != nil {
		t.Errorf("verify off: %v", err)
	}
}

// TestVerifyServingIsNotAGateway503: the route's filter sets the commit
// header on the Gateway's own "503 no available server" too (Traefik, for
// up to a second after a route changes). Such answers, and 502 and 504,
// are not the app serving: verify waits until the app answers, and a
// commit that only ever gets them is not verified.
func TestVerifyServingIsNotAGateway503(t *testing.T) {
	const sha = "bbbbbbbb22222222222222222222222222222222"
	for _, status := range []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(CommitHeader, sha) // on every answer, as the filter sets it
				if hits.Add(1) <= 3 {
					w.WriteHeader(status)
					_, _ = w.Write([]byte("no available server"))
					return
				}
				_, _ = w.Write([]byte("hello"))
			}))
			verify := verifying(t, srv)
			if err := verify(10*time.Second, "bbbbbbbb"); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if n := hits.Load(); n != 4 {
				t.Errorf("verified after %d requests, want 4 (three answered %d by the Gateway)", n, status)
			}

			hits.Store(-1000) // the Gateway's answer from now on
			err := verify(500*time.Millisecond, "bbbbbbbb")
			if want := fmt.Sprintf(`%d from commit "bbbbbbbb2222`, status); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("verify while only the Gateway answers: %v, want an error naming %s", err, want)
			}
		})
	}
}

// verifying returns verifyServing of myapp.example.com's commit sha within
// d, its requests sent to srv (the Gateway's address), and closes srv when
// the test ends.
func verifying(t *testing.T, srv *httptest.Server) func(d time.Duration, sha string) error {
	t.Cleanup(srv.Close)
	c := &Configuration{log: slog.New(slog.DiscardHandler)}
	v := &Verify{Address: strings.TrimPrefix(srv.URL, "http://")}
	return func(d time.Duration, sha string) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return c.verifyServing(ctx, v, "http://myapp.example.com", sha)
	}
}
