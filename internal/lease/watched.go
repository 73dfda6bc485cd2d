package lease

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// unreachableGrace is how long the apiserver may stay unreachable while
// shipper waits for a lock before it gives up: long enough to ride out an
// apiserver restart, short enough not to hang a CI job silently.
var unreachableGrace = 10 * time.Second

// watchedLock is the Lease lock with the apiserver's last answer kept, so
// Do can tell a lock held by another operation (worth waiting for)
// from one that cannot be taken at all. client-go's leader election
// retries every error until its context ends and reports them to klog
// only: without this, a token without Lease rights or a namespace being
// deleted would hang the job until --timeout.
type watchedLock struct {
	resourcelock.Interface

	mu          sync.Mutex
	refused     time.Time // first of a run of refusals: no right, namespace going
	unreachable time.Time // first of a run of connection failures
	lastErr     error

	// minRenewal: a renewal less than this after the last write is not
	// sent (see Update). written is the record of that write, at wroteAt.
	minRenewal time.Duration
	written    *resourcelock.LeaderElectionRecord
	wroteAt    time.Time
	// created: the write that took the lock made the Lease (Created).
	created bool

	// asked is closed once Do asks for the lock: until then the
	// Lease is read but not written (LookAhead).
	asked <-chan struct{}
	// absent: the next read is answered "not found" without being sent
	// (LookAheadNew), once.
	absent bool
}

// refusedGrace lets the authorizer's cache catch up with a RoleBinding
// made a moment ago before a refusal counts as final.
// After an apiserver restart its authorizer answers Forbidden for a few
// seconds, until its RBAC caches are filled again.
var refusedGrace = 5 * time.Second

func (l *watchedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	l.mu.Lock()
	absent := l.absent
	l.absent = false
	l.mu.Unlock()
	if absent {
		return nil, nil, apierrors.NewNotFound(coordinationv1.Resource("leases"), l.Describe())
	}
	start := time.Now()
	r, b, err := l.Interface.Get(ctx)
	if !apierrors.IsNotFound(err) { // a Lease not made yet is the normal start
		l.note(ctx, err, start)
	}
	if err == nil {
		// LeaseLock keeps the Lease it read: from now on an update goes
		// against that one, which another holder may have written (this
		// job paused past the lease, then cut off). giveUp must not
		// empty it blindly: it reads and compares the holder instead.
		l.mu.Lock()
		if l.written != nil && (r == nil || r.HolderIdentity != l.written.HolderIdentity) {
			l.written = nil
		}
		l.mu.Unlock()
	}
	return r, b, err
}

func (l *watchedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	ler, err := l.waitAsked(ctx, ler)
	if err != nil {
		return err
	}
	start := time.Now()
	err = l.Interface.Create(ctx, ler)
	if !apierrors.IsAlreadyExists(err) { // another operation's, just made
		l.note(ctx, err, start)
	}
	if err == nil {
		l.wrote(ler)
		l.mu.Lock()
		l.created = true
		l.mu.Unlock()
	}
	return err
}

// wasCreated reports whether this lock made its Lease. client-go's
// election wins by the write that succeeds first and stops there, so
// when it won, a Create that succeeded was that write.
func (l *watchedLock) wasCreated() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.created
}

// Update writes the record, except a renewal that follows the last write
// by less than minRenewal. client-go's leader election renews at once on
// winning (its renew loop polls immediately), so every Lease was written
// twice within milliseconds; the second write moved RenewTime by those
// milliseconds, against a lease of seconds, and cost more than its
// request: a write to a Lease moves etcd's revision past the Secrets watch
// cache, and the next consistent list of release records then waits for
// a progress notification, which Kubernetes 1.34 requests at most once
// per 100 ms per resource (ConditionalProgressRequester): a promote waited
// up to 100 ms for nothing. A renewal is skipped only when it keeps the
// holder and duration of the record just written; the elector counts it
// as made now while the Lease says minRenewal earlier at most, inside the
// margin between RenewDeadline and LeaseDuration (5 s by default).
func (l *watchedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	if l.renewedJustNow(ler) {
		return nil
	}
	ler, err := l.waitAsked(ctx, ler)
	if err != nil {
		return err
	}
	start := time.Now()
	err = l.Interface.Update(ctx, ler)
	if !apierrors.IsConflict(err) { // another operation renewed first
		l.note(ctx, err, start)
	}
	if err == nil {
		l.wrote(ler)
	}
	return err
}

// waitAsked holds back the write that would take the lock until Do
// asks for it: an election LookAhead started reads the Lease from the
// start, so the lease of a killed job counts from then, but takes it only
// in the order the operation takes its locks. A write that waited carries
// the time it is sent, not the time the elector made it. It goes against
// the Lease as last read: a Lease written since makes it conflict, and the
// elector reads it again.
func (l *watchedLock) waitAsked(ctx context.Context, ler resourcelock.LeaderElectionRecord) (resourcelock.LeaderElectionRecord, error) {
	if l.asked == nil {
		return ler, nil
	}
	select {
	case <-l.asked:
		return ler, nil
	default:
	}
	select {
	case <-l.asked:
		// A refusal or an unreachable apiserver met while the write waited
		// is no failure of the lock now taken: the write's own answer starts
		// a new run (a NotFound Get, then a Create held for as long as the
		// outer lock took, kept a refusal from before as old as the wait).
		l.mu.Lock()
		l.refused, l.unreachable = time.Time{}, time.Time{}
		l.mu.Unlock()
		now := metav1.NewTime(time.Now())
		ler.AcquireTime, ler.RenewTime = now, now
		return ler, nil
	case <-ctx.Done():
		return ler, ctx.Err()
	}
}

func (l *watchedLock) wrote(ler resourcelock.LeaderElectionRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.written, l.wroteAt = &ler, time.Now()
}

func (l *watchedLock) renewedJustNow(ler resourcelock.LeaderElectionRecord) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.written
	return w != nil && time.Since(l.wroteAt) < l.minRenewal &&
		ler.HolderIdentity != "" && ler.HolderIdentity == w.HolderIdentity &&
		ler.LeaseDurationSeconds == w.LeaseDurationSeconds
}

// giveUp gives up the Lease if this lock still holds it, as client-go's
// own release does (holder emptied, duration one second), so the next
// operation need not wait for it to expire. The update is sent against
// the Lease as this lock last wrote it (its resourceVersion), so it fails
// harmlessly when another holder has written since: one request, where a
// read then a write took two. It reports false on a conflict, which is
// also what a write of this lock's that applied but lost its answer
// leaves: the caller then reads the Lease and decides (giveUpIfHeld). A
// Lease gone with its namespace, or an apiserver out of reach, expires by
// itself.
func (l *watchedLock) giveUp(ctx context.Context) bool {
	l.mu.Lock()
	w := l.written
	l.mu.Unlock()
	if w == nil || w.HolderIdentity == "" {
		return false // not written by this lock: read it first
	}
	now := metav1.NewTime(time.Now())
	err := l.Interface.Update(ctx, resourcelock.LeaderElectionRecord{
		LeaseDurationSeconds: 1, RenewTime: now, AcquireTime: now, LeaderTransitions: w.LeaderTransitions,
	})
	return !apierrors.IsConflict(err)
}

// note keeps the answer to a request begun at start. A run of connection
// failures counts from the start of its first request: the retrying
// transport has already spent up to ~16 s on that one, and counting from
// its end would make a job wait out that time twice. A request cut by its
// own context (the election stopped, as when a run of refusals passed its
// grace) says nothing of the apiserver: kept, it would replace the refusal
// the job is told about with "context canceled".
func (l *watchedLock) note(ctx context.Context, err error, start time.Time) {
	if err != nil && ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		l.refused, l.unreachable, l.lastErr = time.Time{}, time.Time{}, nil
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err), apierrors.IsNotFound(err), apierrors.IsInvalid(err):
		// Forbidden covers both a missing right and "unable to create new
		// content in namespace … because it is being terminated".
		if l.refused.IsZero() {
			l.refused = time.Now()
		}
		l.lastErr = err
	default:
		if l.unreachable.IsZero() {
			l.unreachable = start
		}
		l.lastErr = err
	}
}

// failure returns why the lock cannot be taken, or nil while waiting is
// still worth it.
func (l *watchedLock) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.refused.IsZero() && time.Since(l.refused) >= refusedGrace {
		return l.lastErr
	}
	if !l.unreachable.IsZero() && time.Since(l.unreachable) >= unreachableGrace {
		return fmt.Errorf("the apiserver failed every request for %s: %w", time.Since(l.unreachable).Round(time.Second), l.lastErr)
	}
	return nil
}
