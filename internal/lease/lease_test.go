package lease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/kube"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestLockGivesUpOnAnUnreachableAPIServer: a lock whose apiserver refuses
// every connection is given up with the reason once the apiserver has been
// unreachable for unreachableGrace, counted from the first failing
// request. The retrying transport spends its whole backoff on that
// request: counted from its end (as before), the job waited out the
// backoff twice, and a third time releasing the lock it never won (10.8 s
// here before, 4 s now; with the defaults ~16 s instead of ~32 s or more).
func TestLockGivesUpOnAnUnreachableAPIServer(t *testing.T) {
	// Shorter than the defaults (~16 s of retries, 10 s grace), in the same
	// relation: the grace is shorter than one request's retries.
	defer func(b wait.Backoff, g time.Duration) { kube.TransientBackoff, unreachableGrace = b, g }(kube.TransientBackoff, unreachableGrace)
	kube.TransientBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Steps: 5, Cap: 4 * time.Second} // 3.75 s
	unreachableGrace = 3 * time.Second

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()                                                                    // nothing listens there: every connection is refused
	rc, err := kube.Options{URL: "https://" + addr, Insecure: true}.RESTConfig() // with the retrying transport
	if err != nil {
		t.Fatal(err)
	}
	c := newLocker(t, rc, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	ran := false
	err = c.Do(ctx, "ns", "rel", func(context.Context) error { ran = true; return nil })
	took := time.Since(start)
	t.Logf("gave up after %v: %v", took.Round(10*time.Millisecond), err)
	if ran {
		t.Fatal("the operation ran without the lock")
	}
	if err == nil || !strings.Contains(err.Error(), "failed every request") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want the lock given up naming the unreachable apiserver", err)
	}
	// One request's retries (3.75 s) and the lock's tick, not two.
	if took > 6*time.Second {
		t.Errorf("gave up after %v, want about one request's retries (3.75 s)", took)
	}
}

// leaseRequests records the requests a Locker sends for Leases, through
// rc.
type leaseRequests struct {
	rc  *rest.Config
	mu  sync.Mutex
	got []string
}

func (l *leaseRequests) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if strings.Contains(req.URL.Path, "/leases") {
			l.mu.Lock()
			l.got = append(l.got, req.Method)
			l.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

func (l *leaseRequests) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.got, " ")
	l.got = nil
	return s
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestLockWritesItsLeaseOnceAndGivesItUpInOneRequest: taking a lock
// writes its Lease once (client-go's renew loop renewed at once on
// winning: a second write within milliseconds, after which the next
// consistent list of release records waited up to 100 ms for the watch
// cache), renewals still come every retry period, and the release is one
// update against the Lease as last written; a Lease changed behind the
// lock's back (a write of its own that applied but lost its answer) is
// read and released all the same.
func TestLockWritesItsLeaseOnceAndGivesItUpInOneRequest(t *testing.T) {
	cs, ns, seen, c := observedLocker(t, 0)
	ctx := context.Background()
	holder := func() string {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "shipper-rel", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ptr.Deref(l.Spec.HolderIdentity, "")
	}

	// A new Lease: read, created; released in one update. fn outlasts
	// minRenewal (250 ms with the default 15 s lease) by little.
	var created bool
	if err := c.Do(ctx, ns, "rel", func(ctx context.Context) error {
		created = Created(ctx)
		time.Sleep(200 * time.Millisecond)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := seen.take(); got != "GET POST PUT" {
		t.Errorf("lease requests = %q, want %q (read, create, release)", got, "GET POST PUT")
	}
	if !created {
		t.Error("Created = false for the lock that made its Lease, want true")
	}
	if h := holder(); h != "" {
		t.Errorf("holder after release = %q, want none", h)
	}
	// An existing one: read, taken, released.
	if err := c.Do(ctx, ns, "rel", func(ctx context.Context) error { created = Created(ctx); return nil }); err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("Created = true for a lock whose Lease was there (given up by another), want false")
	}
	if got := seen.take(); got != "GET PUT PUT" {
		t.Errorf("lease requests = %q, want %q (read, take, release)", got, "GET PUT PUT")
	}

	// Renewals go on every retry period: a 1.5 s lease renews every 50 ms.
	short := newLocker(t, seen.rc, 1500*time.Millisecond)
	if err := short.Do(ctx, ns, "rel", func(context.Context) error { time.Sleep(400 * time.Millisecond); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := seen.take(); strings.Count(got, "PUT") < 5 {
		t.Errorf("lease requests over 400 ms of a 1.5 s lease = %q, want renewals (take, at least 3 renewals, release)", got)
	}

	// Changed behind the lock's back: the release's update conflicts, and
	// the Lease is read and released.
	err := c.Do(ctx, ns, "rel", func(context.Context) error {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "shipper-rel", metav1.GetOptions{})
		if err != nil {
			return err
		}
		l.Annotations = map[string]string{"touched": "yes"}
		_, err = cs.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := seen.take(); got != "GET PUT PUT GET PUT" {
		t.Errorf("lease requests = %q, want %q (read, take, release refused, read, release)", got, "GET PUT PUT GET PUT")
	}
	if h := holder(); h != "" {
		t.Errorf("holder after a conflicting release = %q, want none", h)
	}
}

// TestLockGiveUpSparesALeaseTakenOver: a lock that read its Lease after
// another holder took it over (this job paused past the lease) does not
// empty that holder's Lease on release: LeaseLock keeps the Lease it last
// read, so the one-request release would have gone through.
func TestLockGiveUpSparesALeaseTakenOver(t *testing.T) {
	env, cs, ns := scratchNamespace(t)
	ctx := context.Background()
	lock := &watchedLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: "shipper-rel"},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: "a"},
	}, minRenewal: time.Second}
	now := metav1.NewTime(time.Now())
	if err := lock.Create(ctx, resourcelock.LeaderElectionRecord{HolderIdentity: "a", LeaseDurationSeconds: 15, AcquireTime: now, RenewTime: now}); err != nil {
		t.Fatal(err)
	}
	// b takes it over; a reads it (client-go's slow path after a failed
	// renewal).
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "shipper-rel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.Spec.HolderIdentity = ptr.To("b")
	if _, err := cs.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := lock.Get(ctx); err != nil {
		t.Fatal(err)
	}
	if lock.giveUp(ctx) {
		t.Error("giveUp reported the Lease given up, want it left to the read-and-compare path")
	}
	c := newLocker(t, env.AdminConfig(), 0)
	c.giveUp(lock, ns, "shipper-rel", "a")
	l, err = cs.CoordinationV1().Leases(ns).Get(ctx, "shipper-rel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != "b" {
		t.Errorf("holder after a's release = %q, want b's Lease untouched", h)
	}
}

// TestLockKilledJobCostsOneLease: a job killed holding two nested locks
// (production's, then the commit's, as promote takes them) costs the next
// one a single lease, not two. client-go counts a lease another holds from
// the moment it first reads it, and the inner lock's elector used to start
// only once the outer lock was won: the inner lease was waited out after
// the outer one (6.3 s here with a 3 s lease; 3.1 s now).
func TestLockKilledJobCostsOneLease(t *testing.T) {
	env, cs, ns := scratchNamespace(t)
	ctx := context.Background()
	const lease = 3 * time.Second
	// The killed job's Leases: renewed a moment ago, never again.
	for _, name := range []string{"outer", "inner"} {
		createLease(t, cs, ns, "shipper-"+name, "killed", int32(lease/time.Second))
	}
	c := newLocker(t, env.AdminConfig(), lease)
	start := time.Now()
	var got time.Duration
	err := c.DoAll(ctx, ns, []string{"outer", "inner"}, func(context.Context) error {
		got = time.Since(start)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("took both locks of a killed job after %v (lease %v)", got.Round(10*time.Millisecond), lease)
	if got < lease {
		t.Errorf("took the killed job's locks after %v, before its lease of %v ran out", got, lease)
	}
	if want := lease * 13 / 10; got > want {
		t.Errorf("took the killed job's locks after %v, want under %v: one lease, not one after the other", got, want)
	}
}

// TestLockNestedLocksNeitherOverlapNorDeadlock: jobs racing for the same
// pair of nested locks, and jobs taking the inner one alone (a deploy of
// the commit while promotes race), all finish, and no two ever run holding
// the same lock. The inner Lease is read from the start but written only
// once the outer one is held.
func TestLockNestedLocksNeitherOverlapNorDeadlock(t *testing.T) {
	env, _, ns := scratchNamespace(t)
	c := newLocker(t, env.AdminConfig(), 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	holders := map[string]int{}
	hold := func(locks []string, d int) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range locks {
			if holders[l] += d; holders[l] > 1 {
				t.Errorf("two jobs ran holding the lock %q", l)
			}
		}
	}
	var wg sync.WaitGroup
	for i := range 6 {
		locks := []string{"outer", "inner"}
		if i%3 == 2 {
			locks = locks[1:]
		}
		wg.Go(func() {
			for range 3 {
				err := c.DoAll(ctx, ns, locks, func(context.Context) error {
					hold(locks, 1)
					defer hold(locks, -1)
					time.Sleep(50 * time.Millisecond)
					return nil
				})
				if err != nil {
					t.Errorf("job %d holding %v: %v", i, locks, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestLockLookAheadForgetsRefusalsFromBeforeItWasAsked: a look-ahead
// election whose read of its Lease was refused once (an apiserver
// restarted while the job waited for the outer lock: its authorizer
// answers Forbidden until its RBAC caches fill) and then found no Lease
// holds its create until Do asks. The refusal is not cleared by the
// NotFound read, nor by the AlreadyExists answer its held create gets when
// another job made the Lease meanwhile: Do's failure check then sees
// a "run of refusals" as old as the whole wait and gives the lock up with
// that stale Forbidden, though the apiserver answered every request since.
// A fresh election (the code before LookAhead) sent its create right after
// the read, with no wait in between.
func TestLockLookAheadForgetsRefusalsFromBeforeItWasAsked(t *testing.T) {
	defer func(g time.Duration) { refusedGrace = g }(refusedGrace)
	refusedGrace = 500 * time.Millisecond
	env, cs, ns := scratchNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var refused atomic.Bool
	rc := env.AdminConfig()
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/leases/shipper-inner") && refused.CompareAndSwap(false, true) {
				body := `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"leases.coordination.k8s.io \"shipper-inner\" is forbidden","reason":"Forbidden","code":403}`
				return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
					Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
			}
			return rt.RoundTrip(req)
		})
	})
	c := newLocker(t, rc, 3*time.Second)
	lctx, stop := c.LookAhead(ctx, Name{ns, "inner"})
	defer stop()
	// Refused, then not found: the create is held. Longer than refusedGrace.
	time.Sleep(time.Second)
	if !refused.Load() {
		t.Fatal("the look-ahead election never read its Lease")
	}
	// Another job took the inner lock meanwhile and released it.
	createLease(t, cs, ns, "shipper-inner", "", 1) // given up
	ran := false
	err := c.Do(lctx, ns, "outer", func(ctx context.Context) error {
		return c.Do(ctx, ns, "inner", func(context.Context) error { ran = true; return nil })
	})
	if err != nil || !ran {
		t.Fatalf("took the free inner lock: ran=%v err=%v; want it taken (the one refusal was before the wait, every answer since was fine)", ran, err)
	}
}

// TestLockLookAheadNeverWritesUnaskedNorOverAnotherHolder: a look-ahead
// election that judged its Lease free holds its write; a live holder that
// takes and renews the Lease meanwhile is not overwritten once the write
// is asked for (it goes against the resourceVersion read before, and
// conflicts), and an election never asked only reads, and stops reading
// at stop().
func TestLockLookAheadNeverWritesUnaskedNorOverAnotherHolder(t *testing.T) {
	cs, ns, seen, c := observedLocker(t, 2*time.Second)
	ctx := context.Background()
	// Never asked: reads only, nothing after stop.
	_, stop := c.LookAhead(ctx, Name{ns, "unasked"})
	time.Sleep(500 * time.Millisecond)
	stop()
	if got := seen.take(); strings.Trim(strings.ReplaceAll(got, "GET", ""), " ") != "" || got == "" {
		t.Errorf("lease requests of an election never asked = %q, want reads only", got)
	}
	time.Sleep(300 * time.Millisecond)
	if got := seen.take(); got != "" {
		t.Errorf("lease requests after stop = %q, want none", got)
	}

	// Free when read (released), then taken and renewed by a live holder.
	createLease(t, cs, ns, "shipper-inner", "", 1) // given up
	lctx, stop := c.LookAhead(ctx, Name{ns, "inner"})
	defer stop()
	time.Sleep(300 * time.Millisecond) // read free: the take is held
	live, liveCancel := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for live.Err() == nil {
			l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "shipper-inner", metav1.GetOptions{})
			if err == nil {
				now := metav1.NewMicroTime(time.Now())
				l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = ptr.To("live"), ptr.To(int32(2)), &now
				_, _ = cs.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{})
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	wctx, wcancel := context.WithTimeout(lctx, 3*time.Second)
	defer wcancel()
	ran := false
	err := c.Do(wctx, ns, "outer", func(ctx context.Context) error {
		return c.Do(ctx, ns, "inner", func(context.Context) error { ran = true; return nil })
	})
	liveCancel()
	<-renewed
	if ran || err == nil {
		t.Fatalf("ran=%v err=%v: took a Lease a live holder renews", ran, err)
	}
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "shipper-inner", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != "live" {
		t.Errorf("holder = %q, want the live holder's Lease untouched", h)
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }

// observedLocker is a Locker with lease in a namespace of its own, whose
// requests for Leases are recorded.
func observedLocker(t *testing.T, lease time.Duration) (kubernetes.Interface, string, *leaseRequests, *Locker) {
	t.Helper()
	env, cs, ns := scratchNamespace(t)
	seen := &leaseRequests{rc: env.AdminConfig()}
	seen.rc.Wrap(seen.wrap)
	return cs, ns, seen, newLocker(t, seen.rc, lease)
}

// createLease makes the Lease name in ns as holder left it a moment ago,
// for seconds.
func createLease(t *testing.T, cs kubernetes.Interface, ns, name, holder string, seconds int32) {
	t.Helper()
	now := metav1.NewMicroTime(time.Now())
	if _, err := cs.CoordinationV1().Leases(ns).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To(seconds), AcquireTime: &now, RenewTime: &now,
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// newLocker is a Locker of shipper's Leases ("shipper-<name>") on the
// cluster of rc, with lease (0: DefaultLease).
func newLocker(t *testing.T, rc *rest.Config, lease time.Duration) *Locker {
	t.Helper()
	// client-go's leader election logs through klog; keep test output
	// readable. A logger, as klog copies errors to stderr otherwise.
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return &Locker{Client: cs.CoordinationV1(), Lease: lease, Prefix: "shipper-"}
}

// scratchNamespace is the test environment, its admin clientset and a
// namespace made for one test, deleted after it.
func scratchNamespace(t *testing.T) (*testenv.Env, kubernetes.Interface, string) {
	t.Helper()
	env := testenv.Get(t)
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	return env, cs, env.Namespace(t)
}

// TestARefusalOutlivesTheRequestItsGiveUpCut: once a run of refusals passes
// its grace the election is stopped, which cuts the request in flight; that
// request's "context canceled" is no answer of the apiserver's, and the job
// is told the refusal (TestLockFailsFastWithoutLeaseRights in the release
// suite failed now and then with "context canceled" instead).
func TestARefusalOutlivesTheRequestItsGiveUpCut(t *testing.T) {
	defer func(g time.Duration) { refusedGrace = g }(refusedGrace)
	refusedGrace = 0
	l := &watchedLock{}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "shipper-x", errors.New("no right"))
	l.note(context.Background(), forbidden, time.Now())
	cut, cancel := context.WithCancel(context.Background())
	cancel()
	l.note(cut, fmt.Errorf("Get %q: %w", "https://apiserver/leases/shipper-x", context.Canceled), time.Now())
	if err := l.failure(); !apierrors.IsForbidden(err) {
		t.Errorf("failure() = %v, want the refusal", err)
	}
}

// TestLockNestedLocksAreGivenUpTogether: the Leases of nested locks are
// given up in one round trip, the inner one's alongside the outer one's,
// and the outer Do returns only once both are. Each give-up is held up
// here (the inner one's 400 ms, the outer one's 300): one after the other
// took 700 ms.
func TestLockNestedLocksAreGivenUpTogether(t *testing.T) {
	env, cs, ns := scratchNamespace(t)
	rc := env.AdminConfig()
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch {
			case req.Method != http.MethodPut:
			case strings.HasSuffix(req.URL.Path, "/leases/shipper-inner"):
				time.Sleep(400 * time.Millisecond)
			case strings.HasSuffix(req.URL.Path, "/leases/shipper-outer"):
				time.Sleep(300 * time.Millisecond)
			}
			return rt.RoundTrip(req)
		})
	})
	c := newLocker(t, rc, 0)
	ctx := context.Background()
	var ended time.Time
	err := c.Do(ctx, ns, "outer", func(ctx context.Context) error {
		return c.Do(ctx, ns, "inner", func(context.Context) error { ended = time.Now(); return nil })
	})
	took := time.Since(ended)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"shipper-outer", "shipper-inner"} {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != "" {
			t.Errorf("%s: holder %q once Do returned, want none", name, h)
		}
	}
	if took >= 600*time.Millisecond {
		t.Errorf("giving up both Leases took %v, want about the slower give-up (400 ms), not both one after the other (700 ms)", took)
	}
}

// TestLockTakenAheadOfItsDo: Take lets a looked-ahead election write its
// Lease before its Do (a deploy's lock, taken while the namespace's
// isolation objects are written); the Do then runs fn under it, with
// Created as for a Lease its Do made. A lock taken ahead that no Do
// comes for (the operation failed first) is given up when LookAhead
// ends, not left to expire.
func TestLockTakenAheadOfItsDo(t *testing.T) {
	cs, ns, _, c := observedLocker(t, 10*time.Second)
	ctx := context.Background()
	holder := func(name string) string {
		t.Helper()
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "shipper-"+name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "(none)"
		}
		if err != nil {
			t.Fatal(err)
		}
		return ptr.Deref(l.Spec.HolderIdentity, "")
	}
	waitHeld := func(name string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for h := holder(name); h == "" || h == "(none)"; h = holder(name) {
			if time.Now().After(deadline) {
				t.Fatalf("Lease %s not taken ahead of its Do within 5 s (holder %q)", name, h)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	lock := Name{ns, "ahead"}
	lctx, stop := c.LookAhead(ctx, lock)
	c.Take(lctx, lock)
	waitHeld("ahead") // before any Do
	var created bool
	ran := false
	if err := c.Do(lctx, ns, "ahead", func(ctx context.Context) error {
		ran, created = true, Created(ctx)
		if h := holder("ahead"); h == "" || h == "(none)" {
			t.Errorf("fn runs while the Lease has holder %q", h)
		}
		return nil
	}); err != nil || !ran {
		t.Fatalf("Do after Take: ran=%v err=%v", ran, err)
	}
	stop()
	if !created {
		t.Errorf("Created = false for a Lease made by the election taken ahead")
	}
	if h := holder("ahead"); h != "" {
		t.Errorf("after Do, holder = %q, want the Lease given up", h)
	}

	// Taken ahead, no Do: LookAhead's end gives it up.
	lock = Name{ns, "orphan"}
	lctx, stop = c.LookAhead(ctx, lock)
	c.Take(lctx, lock)
	waitHeld("orphan")
	stop()
	if h := holder("orphan"); h != "" {
		t.Errorf("a lock taken ahead that no Do came for: holder %q after LookAhead's end, want it given up", h)
	}

	// Take without a looked-ahead election does nothing.
	c.Take(ctx, Name{ns, "none"})
	time.Sleep(200 * time.Millisecond)
	if h := holder("none"); h != "(none)" {
		t.Errorf("Take without LookAhead wrote Lease none (holder %q)", h)
	}
}

// TestLockTakenAheadGivenUpWhenItsWriteWasCut: a lock taken ahead (Take)
// whose Lease write the apiserver applied but whose answer the end of
// LookAhead cut (a deploy that failed, or was cancelled, while its
// namespace's isolation objects and this write were in flight) is given
// up all the same: the election never saw itself win, but the Lease names
// it, and the next operation would wait out the whole lease (15 s).
func TestLockTakenAheadGivenUpWhenItsWriteWasCut(t *testing.T) {
	env, cs, ns := scratchNamespace(t)
	rc := env.AdminConfig()
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err != nil || req.Method != http.MethodPost || !strings.Contains(req.URL.Path, "/leases") {
				return resp, err
			}
			// Applied; its answer is slow to come back.
			select {
			case <-req.Context().Done():
				resp.Body.Close()
				return nil, req.Context().Err()
			case <-time.After(2 * time.Second):
				return resp, nil
			}
		})
	})
	c := newLocker(t, rc, 10*time.Second)
	ctx := context.Background()
	lock := Name{ns, "cut"}
	lctx, stop := c.LookAhead(ctx, lock)
	c.Take(lctx, lock)
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "shipper-cut", metav1.GetOptions{})
		if err == nil && ptr.Deref(l.Spec.HolderIdentity, "") != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lease not written within 5 s of Take: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop() // the write's answer still on its way
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "shipper-cut", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != "" {
		t.Errorf("after LookAhead's end the Lease taken ahead is still held by %q (for %ds), want it given up", h, ptr.Deref(l.Spec.LeaseDurationSeconds, 0))
	}
}

// TestLockTakenAheadLostBeforeItsDo: a lock taken ahead (Take) that is
// lost before its Do comes (another holder wrote the Lease, renewals
// failed past the renew deadline) fails that Do saying the lock was lost,
// as one lost while fn runs does, not with a bare "context canceled" that
// reads as a cancelled job; fn never runs.
func TestLockTakenAheadLostBeforeItsDo(t *testing.T) {
	_, cs, ns := scratchNamespace(t)
	env := testenv.Get(t)
	c := newLocker(t, env.AdminConfig(), 3*time.Second) // renew deadline 2 s
	ctx := context.Background()
	lock := Name{ns, "lost"}
	lctx, stop := c.LookAhead(ctx, lock)
	defer stop()
	c.Take(lctx, lock)
	leases := cs.CoordinationV1().Leases(ns)
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := leases.Get(ctx, "shipper-lost", metav1.GetOptions{})
		if err == nil && ptr.Deref(l.Spec.HolderIdentity, "") != "" {
			// Taken over behind its back, for longer than the test.
			now := metav1.NewMicroTime(time.Now())
			l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = ptr.To("other"), ptr.To[int32](60), &now
			if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lease not taken and overwritten within 5 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // past the renew deadline
	ran := false
	err := c.Do(lctx, ns, "lost", func(context.Context) error { ran = true; return nil })
	if ran {
		t.Error("fn ran under a lock lost before its Do")
	}
	if err == nil || !strings.Contains(err.Error(), "lost the lock") {
		t.Errorf("Do after the lock taken ahead was lost: %v, want it to say the lock was lost", err)
	}
}

// TestLockLookAheadNewSendsItsCreateFirst: an election LookAheadNew
// started (a namespace the operation made) takes a Lease no one made with
// one request, its Create, where LookAhead's read it first; a Lease
// another job made meanwhile is not taken over by it: the Create fails,
// the election reads the Lease and waits for its holder's lease to run
// out, as any.
func TestLockLookAheadNewSendsItsCreateFirst(t *testing.T) {
	cs, ns, seen, c := observedLocker(t, 0)
	ctx := context.Background()

	lock := Name{ns, "new"}
	lctx, stop := c.LookAheadNew(ctx, lock)
	var created bool
	if err := c.Do(lctx, ns, "new", func(ctx context.Context) error { created = Created(ctx); return nil }); err != nil {
		t.Fatal(err)
	}
	stop()
	if got := seen.take(); got != "POST PUT" {
		t.Errorf("lease requests = %q, want %q (create, release)", got, "POST PUT")
	}
	if !created {
		t.Error("Created = false for the lock that made its Lease, want true")
	}

	// Made by another job between the namespace and the election: held
	// for 1 s from when the election first reads it.
	createLease(t, cs, ns, "shipper-taken", "other-job", 1)
	lock = Name{ns, "taken"}
	lctx, stop = c.LookAheadNew(ctx, lock)
	defer stop()
	start := time.Now()
	var ranAfter time.Duration
	if err := c.Do(lctx, ns, "taken", func(ctx context.Context) error {
		ranAfter, created = time.Since(start), Created(ctx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ranAfter < time.Second {
		t.Errorf("fn ran %s after the election began, while another job's 1 s Lease was held", ranAfter)
	}
	if created {
		t.Error("Created = true for a lock whose Lease another job made, want false")
	}
	if got := seen.take(); !strings.HasPrefix(got, "POST GET") {
		t.Errorf("lease requests = %q, want the create refused, then the Lease read (%q...)", got, "POST GET")
	}
}
