package kube

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

// aheadServer answers GET /api/v1/namespaces/NS/configmaps/NAME with the
// count of GETs of that path so far (200) or, for a name "missing", 404;
// release holds every answer until closed.
type aheadServer struct {
	*httptest.Server
	mu      sync.Mutex
	gets    map[string]int
	release chan struct{}
	total   atomic.Int64
}

func newAheadServer(t *testing.T) *aheadServer {
	s := &aheadServer{gets: map[string]int{}, release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.total.Add(1)
		<-s.release
		s.mu.Lock()
		s.gets[r.Method+" "+r.URL.Path]++
		n := s.gets[r.Method+" "+r.URL.Path]
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v1/namespaces/ns/configmaps/missing" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
			return
		}
		_, _ = w.Write([]byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","annotations":{"n":"` + string(rune('0'+n)) + `"}}}`))
	}))
	t.Cleanup(s.Close)
	return s
}

// awaitRequests waits, 5 s at most, until n requests have reached s.
func (s *aheadServer) awaitRequests(n int64) {
	deadline := time.Now().Add(5 * time.Second)
	for s.total.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

func aheadClient(t *testing.T, url string, ra *ReadAhead) rest.Interface {
	return aheadClientAs(t, url, "", ra)
}

// aheadClientAs is aheadClient with a bearer token.
func aheadClientAs(t *testing.T, url, token string, ra *ReadAhead) rest.Interface {
	return coreClient(t, url, token, ra.Wrap)
}

// coreClient is a REST client of the core API at url, with a bearer token
// when not empty, through the transport middleware wrap.
func coreClient(t *testing.T, url, token string, wrap transport.WrapperFunc) rest.Interface {
	t.Helper()
	cfg := &rest.Config{Host: url, BearerToken: token}
	cfg.Wrap(wrap)
	cfg.GroupVersion = &schema.GroupVersion{Version: "v1"}
	cfg.APIPath = "/api"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	c, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// aheadSetup is a server, answering at once when answering, and a client
// through a ReadAhead.
func aheadSetup(t *testing.T, answering bool) (*aheadServer, *ReadAhead, rest.Interface) {
	s := newAheadServer(t)
	if answering {
		close(s.release)
	}
	ra := new(ReadAhead)
	return s, ra, aheadClient(t, s.URL, ra)
}

func get(c rest.Interface, name string) *rest.Request {
	return c.Get().Namespace("ns").Resource("configmaps").Name(name)
}

// TestReadAheadAnswersTheLaterGETsOnce: GETs sent ahead go out at once,
// the later GETs of their URLs take their answers (200 and 404 alike)
// without a request of their own, each answer once, and a GET of another
// URL goes out.
func TestReadAheadAnswersTheLaterGETsOnce(t *testing.T) {
	s, ra, c := aheadSetup(t, false)
	ctx := context.Background()
	for _, name := range []string{"a", "b", "missing"} {
		ra.Send(ctx, get(c, name))
	}
	// All three are on the wire before any is answered: sent at once.
	s.awaitRequests(3)
	if n := s.total.Load(); n != 3 {
		t.Fatalf("%d requests on the wire before any answer, want the 3 sent ahead", n)
	}
	close(s.release)

	for _, name := range []string{"a", "b"} {
		body, err := get(c, name).Do(ctx).Raw()
		if err != nil {
			t.Fatalf("GET %s: %v", name, err)
		}
		if want := `"n":"1"`; !strings.Contains(string(body), want) {
			t.Errorf("GET %s answered %s, want the first answer (%s)", name, body, want)
		}
	}
	if err := get(c, "missing").Do(ctx).Error(); !apierrors.IsNotFound(err) {
		t.Errorf("GET missing: %v, want the 404 sent ahead", err)
	}
	if n, taken := s.total.Load(), ra.Taken(); n != 3 || taken != 3 {
		t.Errorf("%d requests sent, %d answers taken: want 3 and 3", n, taken)
	}
	// Taken once: the next GET of a goes out, as does one never sent ahead.
	body, err := get(c, "a").Do(ctx).Raw()
	if err != nil || !strings.Contains(string(body), `"n":"2"`) {
		t.Errorf("second GET of a: %s, %v: want a fresh answer (n 2)", body, err)
	}
	if _, err := get(c, "c").Do(ctx).Raw(); err != nil {
		t.Fatal(err)
	}
	if n := s.total.Load(); n != 5 {
		t.Errorf("%d requests sent, want 5", n)
	}
}

// TestReadAheadForgotten: answers not taken before Forget are not taken
// after it: the GET goes out (a write may have changed the object since).
func TestReadAheadForgotten(t *testing.T) {
	s, ra, c := aheadSetup(t, true)
	ctx := context.Background()
	ra.Send(ctx, get(c, "a"))
	ra.Forget()
	body, err := get(c, "a").Do(ctx).Raw()
	if err != nil {
		t.Fatal(err)
	}
	s.awaitRequests(2) // the GET ahead may still be on its way
	if ra.Taken() != 0 || s.total.Load() != 2 {
		t.Errorf("after Forget: %d taken, %d requests (answer %s): want 0 and 2", ra.Taken(), s.total.Load(), body)
	}
}

// TestReadAheadFailedGoesOut: a GET sent ahead that got no answer (its
// context ended) is not taken: the later GET goes out itself.
func TestReadAheadFailedGoesOut(t *testing.T) {
	s, ra, c := aheadSetup(t, false)
	ahead, cancel := context.WithCancel(context.Background())
	ra.Send(ahead, get(c, "a"))
	cancel()
	close(s.release)
	body, err := get(c, "a").Do(context.Background()).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if ra.Taken() != 0 {
		t.Errorf("a failed GET sent ahead was taken (answer %s)", body)
	}
}

// TestReadAheadWriteDropsAnswers: a write through the transport drops the
// answers kept, so a GET after it reads again; a HEAD does not.
func TestReadAheadWriteDropsAnswers(t *testing.T) {
	s, ra, c := aheadSetup(t, true)
	ctx := context.Background()
	ra.Send(ctx, get(c, "a"))
	ra.Send(ctx, get(c, "b"))
	if err := c.Delete().Namespace("ns").Resource("configmaps").Name("a").Do(ctx).Error(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	deletes := s.gets["DELETE /api/v1/namespaces/ns/configmaps/a"]
	s.mu.Unlock()
	if deletes != 1 {
		t.Errorf("%d DELETEs reached the server, want 1", deletes)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := get(c, name).Do(ctx).Raw(); err != nil {
			t.Fatal(err)
		}
	}
	if ra.Taken() != 0 {
		t.Errorf("%d GETs after a DELETE took answers read before it, want 0", ra.Taken())
	}
}

// TestReadAheadWriteDropsOnlyWhatItMayChange: a write to another resource
// of the namespace (a Lease), or to the same resource in another
// namespace, leaves the answers about ConfigMaps of ns be; a write to the
// namespace itself drops them all.
func TestReadAheadWriteDropsOnlyWhatItMayChange(t *testing.T) {
	_, ra, c := aheadSetup(t, true)
	ctx := context.Background()
	ra.Send(ctx, get(c, "a"))
	ra.Send(ctx, get(c, "b"))
	for _, w := range []*rest.Request{
		c.Post().Namespace("ns").Resource("leases").Body([]byte(`{}`)),
		c.Delete().Namespace("other").Resource("configmaps").Name("a"),
		c.Put().AbsPath("/apis/coordination.k8s.io/v1/namespaces/ns/leases/l").Body([]byte(`{}`)),
	} {
		if err := w.Do(ctx).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := get(c, "a").Do(ctx).Raw(); err != nil {
		t.Fatal(err)
	}
	if ra.Taken() != 1 {
		t.Errorf("after writes to other resources: %d answers taken, want 1", ra.Taken())
	}
	if err := c.Delete().Resource("namespaces").Name("ns").Do(ctx).Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := get(c, "b").Do(ctx).Raw(); err != nil {
		t.Fatal(err)
	}
	if ra.Taken() != 1 {
		t.Errorf("after the namespace's DELETE: %d answers taken, want still 1", ra.Taken())
	}
}

func TestNamespacedResource(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/namespaces/ns/services":                             "ns services",
		"/api/v1/namespaces/ns/services/web":                         "ns services",
		"/api/v1/namespaces/ns/pods/p/status":                        "ns pods",
		"/apis/networking.k8s.io/v1/namespaces/ns/ingresses/web":     "ns ingresses",
		"/apis/extensions/v1beta1/namespaces/ns/ingresses":           "ns ingresses",
		"/api/v1/namespaces/ns":                                      "",
		"/api/v1/namespaces/ns/status":                               "",
		"/api/v1/namespaces/ns/finalize":                             "",
		"/api/v1/namespaces":                                         "",
		"/apis/rbac.authorization.k8s.io/v1/clusterroles/x":          "",
		"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/cr": "",
		"/api":                     "",
		"/apis/g/v1/namespaces//x": "",
	} {
		ns, res, ok := namespacedResource(path)
		got := ""
		if ok {
			got = ns + " " + res
		}
		if got != want {
			t.Errorf("namespacedResource(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestReadAheadOnlyTheSameQuestion: a GET that asks otherwise than the
// GET ahead (another representation, other credentials) goes out itself.
func TestReadAheadOnlyTheSameQuestion(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer admin" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`))
			return
		}
		_, _ = w.Write([]byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"},"data":{"secret":"s3cr3t"}}`))
	}))
	t.Cleanup(srv.Close)
	ra := new(ReadAhead)
	admin, other := aheadClientAs(t, srv.URL, "admin", ra), aheadClientAs(t, srv.URL, "nobody", ra)
	ctx := context.Background()
	ra.Send(ctx, get(admin, "a"))
	if body, err := get(other, "a").Do(ctx).Raw(); !apierrors.IsForbidden(err) {
		t.Errorf("a client with other credentials got %s, %v: want its own 403", body, err)
	}
	ra.Send(ctx, get(admin, "a"))
	table := get(admin, "a").SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	if _, err := table.Do(ctx).Raw(); err != nil {
		t.Fatal(err)
	}
	if ra.Taken() != 0 {
		t.Errorf("%d GETs asking otherwise took answers sent ahead, want 0", ra.Taken())
	}
	if _, err := get(admin, "a").Do(ctx).Raw(); err != nil || ra.Taken() != 0 {
		// The second answer was taken by the Table GET's lookup and not
		// used: it is gone, and this GET goes out too.
		t.Errorf("after: taken %d, err %v", ra.Taken(), err)
	}
}

// TestReadAheadAnswerAfterForget: the answer of a GET ahead still on its
// way at Forget, kept after it, is never taken (from the review).
func TestReadAheadAnswerAfterForget(t *testing.T) {
	s, ra, c := aheadSetup(t, false)
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		ra.Send(ctx, get(c, name))
	}
	s.awaitRequests(3)
	ra.Forget()
	close(s.release) // the answers arrive, and are kept, after Forget
	for _, name := range []string{"a", "b", "c"} {
		if _, err := get(c, name).Do(ctx).Raw(); err != nil {
			t.Fatal(err)
		}
	}
	if ra.Taken() != 0 || s.total.Load() != 6 {
		t.Errorf("taken %d, requests %d: want 0 and 6", ra.Taken(), s.total.Load())
	}
}
