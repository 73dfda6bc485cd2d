package release

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestVerifyServingWaitsForTheCommit: verifyServing sends requests for the
// URL's host to Verify.Address until the commit header names the commit,
// whatever the status; it gives up at ctx's end naming the last answer.
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
	defer srv.Close()
	c := &Configuration{log: slog.New(slog.DiscardHandler)}
	v := &Verify{Address: strings.TrimPrefix(srv.URL, "http://")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.verifyServing(ctx, v, "http://myapp.example.com", "bbbbbbbb"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if n := hits.Load(); n != 4 {
		t.Errorf("verified after %d requests, want 4 (three answered by the old commit)", n)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	err := c.verifyServing(short, v, "http://myapp.example.com", "cccccccc")
	if err == nil || !strings.Contains(err.Error(), `404 from commit "bbbbbbbb2222`) {
		t.Errorf("verify of a commit that never answers: %v, want the last answer named", err)
	}
	if err := c.verifyServing(short, nil, "http://myapp.example.com", "cccccccc"); err != nil {
		t.Errorf("verify off: %v", err)
	}
}
