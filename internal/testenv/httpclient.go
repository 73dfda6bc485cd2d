package testenv

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// WebClient is an http.Client acting as a browser, for tests of the preview
// gate's sign-ins: a cookie jar, redirects followed, every host under
// Domain dialled at one address (so a page on shop.example.com reaches the
// test's server with its Host), and a copy of every response kept, so a
// test can look for what must never reach a browser.
type WebClient struct {
	T   testing.TB
	Jar *cookiejar.Jar
	// Stop, when set, ends a chain of redirects before the request it
	// matches: the redirect itself is then the response.
	Stop func(*url.URL) bool

	client *http.Client
	seen   LockedBuffer
}

// NewWebClient returns a browser that dials every host under domain at
// addr, and any other at its own address.
func NewWebClient(t testing.TB, domain, addr string) *WebClient {
	jar, _ := cookiejar.New(nil)
	b := &WebClient{T: t, Jar: jar}
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(a); strings.HasSuffix(host, "."+domain) || host == domain {
			a = addr
		}
		return d.DialContext(ctx, network, a)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	b.client = &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: recorder{tr, &b.seen}, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if b.Stop != nil && b.Stop(req.URL) {
			return http.ErrUseLastResponse
		}
		if len(via) >= 15 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	return b
}

// Seen is every response the browser received: status lines, headers
// and bodies.
func (b *WebClient) Seen() string { return b.seen.String() }

// Page is one response, read.
type Page struct {
	Status int
	URL    *url.URL // where the browser ended
	Header http.Header
	Body   string
}

// Do sends req, following redirects.
func (b *WebClient) Do(req *http.Request) Page {
	b.T.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return Page{resp.StatusCode, resp.Request.URL, resp.Header, string(body)}
}

// Get opens target.
func (b *WebClient) Get(target string) Page {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		b.T.Fatal(err)
	}
	return b.Do(req)
}

// Post submits form to target.
func (b *WebClient) Post(target string, form url.Values) Page {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		b.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// Value is the first group of re in p's body, HTML unescaped.
func (p Page) Value(t testing.TB, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("%s: %d, no %s in %q", p.URL, p.Status, re, p.Body)
	}
	return html.UnescapeString(m[1])
}

// Link is Value, a link resolved against p's URL.
func (p Page) Link(t testing.TB, re *regexp.Regexp) string {
	t.Helper()
	u, err := p.URL.Parse(p.Value(t, re))
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// recorder keeps a copy of every response.
type recorder struct {
	next http.RoundTripper
	to   io.Writer
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	dump, _ := httputil.DumpResponse(resp, false)
	r.to.Write(dump)
	r.to.Write(body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// LockedBuffer is a bytes.Buffer safe for concurrent writers (a log
// handler's, a transport's).
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
