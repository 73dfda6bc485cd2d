package kube

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// ReadAhead sends GETs before the code that needs their answers asks for
// them, all at once, where that code asks one after the other: Helm's
// install checks each resource it is about to create with a GET
// (existingResourceConflict), waiting for each answer before the next
// request. A GET sent ahead (Send) keeps its answer; the next GET of the
// same URL through the same transport (Wrap) takes that answer instead of
// going out. The caller sees what it would have seen had it sent its
// request when the one ahead went: the same request, answered by the
// apiserver, a few milliseconds earlier.
//
// Each answer is taken once, by the first GET of its URL that asks as the
// GET ahead asked (the same Accept, credentials and impersonation); one
// that failed on the way (no answer from the apiserver) is not taken: that
// GET goes out itself, retried as any. Any other request but HEAD and
// OPTIONS (a write) drops the answers not taken that it may change, so
// that what a write may have changed is read again: those about its
// resource in its namespace (a write to a Lease leaves the answers about
// Services be), and all of them for a write to anything else (a namespace
// itself, a cluster-scoped object, a path not understood). Writes made
// by others, as ever, are seen only by the reads sent after them. A
// request count (Requests) is unchanged: the GET ahead is the one sent. At most aheadAtOnce GETs are
// on their way at once.
//
// client-go has no such cache, and Helm's check takes no client of the
// caller's but the resource's REST client (resource.Helper), so the
// answers wait here, in the transport every client of the rest.Config
// shares.
type ReadAhead struct {
	mu      sync.Mutex
	answers map[string]*aheadAnswer // by URL
	taken   atomic.Int64
	slots   chan struct{} // aheadAtOnce, made on first use
}

// aheadAtOnce bounds the GETs sent ahead that are on their way at once.
const aheadAtOnce = 16

// aheadAnswer is the answer to a GET sent ahead, once done is closed.
type aheadAnswer struct {
	done chan struct{}
	// ns and resource are what its URL reads (namespacedResource;
	// scoped false: not a namespaced resource's).
	ns, resource string
	scoped       bool
	asked        string // how it was asked (asked)
	status       int
	header       http.Header
	body         []byte
	ok           bool // the apiserver answered
}

// asked is what, beside its URL, makes a GET's answer the answer to
// another GET: the representation it accepts and whose request it is.
func asked(h http.Header) string {
	var b strings.Builder
	for _, k := range []string{"Accept", "Authorization", "Impersonate-User", "Impersonate-Uid"} {
		b.WriteString(k + ":" + strings.Join(h.Values(k), ",") + "\n")
	}
	var extra []string
	for k := range h {
		if k == "Impersonate-Group" || strings.HasPrefix(k, "Impersonate-Extra-") {
			extra = append(extra, k+":"+strings.Join(h.Values(k), ","))
		}
	}
	slices.Sort(extra)
	b.WriteString(strings.Join(extra, "\n"))
	return b.String()
}

// aheadKey marks the context of a GET sent ahead.
type aheadKey struct{}

// Wrap is a rest.Config.Wrap transport middleware: GETs sent ahead keep
// their answers there, and later GETs take them.
func (r *ReadAhead) Wrap(next http.RoundTripper) http.RoundTripper {
	return &aheadTransport{r: r, next: next}
}

// Send sends req, a GET built with the REST client the later caller
// uses, now, and keeps its answer for the next GET of its URL. It does
// not wait: the request is registered before Send returns, so a GET of
// the same URL made after Send waits for this one's answer.
func (r *ReadAhead) Send(ctx context.Context, req *rest.Request) {
	u := req.URL()
	a := &aheadAnswer{done: make(chan struct{})}
	a.ns, a.resource, a.scoped = namespacedResource(u.Path)
	key := u.String()
	r.mu.Lock()
	if r.answers == nil {
		r.answers = map[string]*aheadAnswer{}
	}
	if _, dup := r.answers[key]; dup {
		r.mu.Unlock()
		return
	}
	r.answers[key] = a
	if r.slots == nil {
		r.slots = make(chan struct{}, aheadAtOnce)
	}
	slots := r.slots
	r.mu.Unlock()
	go func() {
		defer close(a.done)
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-ctx.Done():
			return
		}
		// The answer is kept by the transport (RoundTrip); the decoded
		// result is the later caller's to make.
		_ = req.Do(context.WithValue(ctx, aheadKey{}, a))
	}()
}

// Forget drops the answers not taken.
func (r *ReadAhead) Forget() {
	r.mu.Lock()
	r.answers = nil
	r.mu.Unlock()
}

// forgetFor drops the answers not taken that a write to path may change:
// those about its resource in its namespace, or all of them for a write
// to anything else.
func (r *ReadAhead) forgetFor(path string) {
	ns, resource, ok := namespacedResource(path)
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, a := range r.answers {
		if !ok || !a.scoped || a.ns == ns && a.resource == resource {
			delete(r.answers, key)
		}
	}
}

// namespacedResource is the namespace and resource (plural, of any group
// and version) of an API path to a namespaced resource, its collection
// or one of its objects (/api/v1/namespaces/NS/RESOURCE[/NAME[/SUB]],
// /apis/GROUP/VERSION/namespaces/NS/RESOURCE[...]); ok is false for any
// other path (a namespace itself or its status and finalize, a
// cluster-scoped object, discovery).
// The group is left out so that a resource two groups serve (Ingresses,
// once of extensions and networking.k8s.io) is one.
func namespacedResource(path string) (ns, resource string, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 5 && parts[0] == "api" && parts[2] == "namespaces":
		if parts[4] == "status" || parts[4] == "finalize" { // the namespace's own subresources
			return "", "", false
		}
		return parts[3], parts[4], parts[3] != "" && parts[4] != ""
	case len(parts) >= 6 && parts[0] == "apis" && parts[3] == "namespaces":
		return parts[4], parts[5], parts[4] != "" && parts[5] != ""
	}
	return "", "", false
}

// Taken is how many GETs took an answer sent ahead.
func (r *ReadAhead) Taken() int64 { return r.taken.Load() }

// take removes and returns the answer kept for key, if any.
func (r *ReadAhead) take(key string) *aheadAnswer {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.answers[key]
	delete(r.answers, key)
	return a
}

type aheadTransport struct {
	r    *ReadAhead
	next http.RoundTripper
}

func (t *aheadTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodGet:
	case http.MethodHead, http.MethodOptions:
		return t.next.RoundTrip(req)
	default:
		t.r.forgetFor(req.URL.Path) // a write may change what an answer kept says
		return t.next.RoundTrip(req)
	}
	if a, ok := req.Context().Value(aheadKey{}).(*aheadAnswer); ok {
		return t.keep(req, a)
	}
	a := t.r.take(req.URL.String())
	if a == nil {
		return t.next.RoundTrip(req)
	}
	select {
	case <-a.done:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	if !a.ok || a.asked != asked(req.Header) {
		return t.next.RoundTrip(req)
	}
	t.r.taken.Add(1)
	return &http.Response{
		Status: strconv.Itoa(a.status) + " " + http.StatusText(a.status), StatusCode: a.status,
		Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: a.header.Clone(), Body: io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)), Request: req,
	}, nil
}

// keep sends a GET ahead and keeps its answer in a, reading its body
// whole (an object: the caller reads it whole too), and gives the sender
// a copy.
func (t *aheadTransport) keep(req *http.Request, a *aheadAnswer) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	a.asked, a.status, a.header, a.body, a.ok = asked(req.Header), resp.StatusCode, resp.Header.Clone(), body, true
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
