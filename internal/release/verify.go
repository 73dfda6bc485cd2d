package release

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// CommitHeader is the response header the gateway router's routes set to
// the commit that answered (the chart's "preview-app.commitHeader").
const CommitHeader = "Shipper-Commit"

// Verify makes an operation on the gateway router return only once its
// URL answers from the commit it routed to, read from CommitHeader. The
// Gateway's conditions say the controller took the route, not that its
// proxies serve it: Traefik reports Accepted up to its provider throttle
// (2 s by default) before its routers change, so a job that curls the URL
// right after a promote could still reach the previous commit.
type Verify struct {
	// Address, when set, is where the requests go (host:port) instead of
	// the address the URL's host resolves to, as curl's --connect-to: the
	// Gateway's address when the host's DNS is not in place, or in a test.
	// The request still names the host (Host header, TLS server name).
	Address string
}

// verifyServing requests url (the host and the routed path) until the app
// of commit sha answers: CommitHeader names sha (a prefix of the full SHA
// the route sets) on an answer whose status is not one a Gateway gives
// when it has no backend to send the request to.
//
// The header alone does not say the app answered: the route's
// ResponseHeaderModifier filter sets it on every answer through the route,
// the Gateway's own "503 no available server" included (Traefik gives one
// for up to a second after a route changes, until its endpoints are in).
// So 502, 503 and 504 count as not serving yet, even from the app itself:
// an app that answers 503 is not serving either. Any other status (a 404
// or a 500 is the app's own answer) counts.
func (c *Configuration) verifyServing(ctx context.Context, v *Verify, url, sha string) error {
	if v == nil {
		return nil
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true // each try a new connection, as a new client's would be
	if v.Address != "" {
		tr.Proxy = nil // to the Gateway itself, never through a proxy
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, v.Address)
		}
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	last := "no answer yet"
	start := time.Now()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil { // not the request the deadline cut
				last = err.Error()
			}
			return false, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		got := resp.Header.Get(CommitHeader)
		if got != "" && (strings.HasPrefix(got, sha) || strings.HasPrefix(sha, got)) && !noBackend(resp.StatusCode) {
			return true, nil
		}
		last = fmt.Sprintf("%d from commit %q", resp.StatusCode, got)
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("verifying %s serves commit %s: last answer %s: %w", url, sha, last, err)
	}
	c.log.Info("verified", "url", url, "sha", sha, "after", time.Since(start).Round(time.Millisecond))
	return nil
}

// noBackend reports a status a Gateway answers with when it has nothing to
// send the request to (no ready endpoint, none reachable, none in time).
func noBackend(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// requireVerifiable refuses Verify on the ingress router, whose Ingresses
// set no CommitHeader.
func (c *Configuration) requireVerifiable(v *Verify) error {
	if v != nil && c.router() != RouterGateway {
		return &UsageError{Input: "--verify", Value: "true", Rule: "needs the gateway router (--router gateway), whose routes name the commit that answered"}
	}
	return nil
}
