package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// scripted answers a request from a list: an error or a status code.
type scripted struct {
	answers []any
	calls   int
	bodies  []string
}

func (s *scripted) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		s.bodies = append(s.bodies, string(b))
	}
	a := s.answers[min(s.calls, len(s.answers)-1)]
	s.calls++
	switch a := a.(type) {
	case error:
		return nil, a
	case int:
		return &http.Response{StatusCode: a, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
	}
	panic(fmt.Sprintf("bad answer %v", a))
}

func TestRetryTransport(t *testing.T) {
	refused := fmt.Errorf("dial tcp 127.0.0.1:6443: connect: %w", syscall.ECONNREFUSED)
	reset := fmt.Errorf("read: %w", syscall.ECONNRESET)
	fast := wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 5}
	for _, tc := range []struct {
		name      string
		method    string
		answers   []any
		wantCalls int
		wantCode  int
	}{
		{"read through a restart", http.MethodGet, []any{refused, refused, 200}, 3, 200},
		{"write refused at the connection is sent again", http.MethodPost, []any{refused, 201}, 2, 201},
		{"read after a reset", http.MethodGet, []any{reset, 200}, 2, 200},
		{"write after a reset may have applied: not again", http.MethodPost, []any{reset, 201}, 1, 0},
		{"read meeting 503", http.MethodGet, []any{503, 503, 200}, 3, 200},
		{"write meeting 503: not again", http.MethodPut, []any{503, 200}, 1, 503},
		{"a refusal that lasts ends", http.MethodGet, []any{refused}, 5, 0},
		{"404 is an answer", http.MethodGet, []any{404, 200}, 1, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{answers: tc.answers}
			rt := &retryTransport{next: s, backoff: fast}
			req, err := http.NewRequest(tc.method, "https://127.0.0.1:6443/api/v1/namespaces", strings.NewReader(`{"kind":"Namespace"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := rt.RoundTrip(req)
			code := 0
			if err == nil {
				code = resp.StatusCode
			}
			if s.calls != tc.wantCalls || code != tc.wantCode {
				t.Errorf("calls %d, code %d (err %v); want %d calls, code %d", s.calls, code, err, tc.wantCalls, tc.wantCode)
			}
			for i, b := range s.bodies {
				if b != `{"kind":"Namespace"}` {
					t.Errorf("attempt %d sent body %q", i+1, b)
				}
			}
		})
	}
}

func TestRetryTransportStopsWithTheContext(t *testing.T) {
	refused := fmt.Errorf("connect: %w", syscall.ECONNREFUSED)
	rt := &retryTransport{next: &scripted{answers: []any{refused}}, backoff: wait.Backoff{Duration: time.Hour, Steps: 5}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:6443/api", nil)
	start := time.Now()
	if _, err := rt.RoundTrip(req); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("err %v after %v; want the refusal, at the context's end", err, time.Since(start))
	}
}
