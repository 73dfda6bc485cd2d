package release

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// unreachableGrace is how long the apiserver may stay unreachable while
// shipper waits for a lock before it gives up: long enough to ride out an
// apiserver restart, short enough not to hang a CI job silently.
var unreachableGrace = 10 * time.Second

// watchedLock is the Lease lock with the apiserver's last answer kept, so
// withLock can tell a lock held by another operation (worth waiting for)
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
}

// refusedGrace lets the authorizer's cache catch up with a RoleBinding
// made a moment ago before a refusal counts as final.
// After an apiserver restart its authorizer answers Forbidden for a few
// seconds, until its RBAC caches are filled again.
var refusedGrace = 5 * time.Second

func (l *watchedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	start := time.Now()
	r, b, err := l.Interface.Get(ctx)
	if !apierrors.IsNotFound(err) { // a Lease not made yet is the normal start
		l.note(err, start)
	}
	return r, b, err
}

func (l *watchedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	start := time.Now()
	err := l.Interface.Create(ctx, ler)
	if !apierrors.IsAlreadyExists(err) { // another operation's, just made
		l.note(err, start)
	}
	return err
}

func (l *watchedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	start := time.Now()
	err := l.Interface.Update(ctx, ler)
	if !apierrors.IsConflict(err) { // another operation renewed first
		l.note(err, start)
	}
	return err
}

// note keeps the answer to a request begun at start. A run of connection
// failures counts from the start of its first request: the retrying
// transport has already spent up to ~16 s on that one, and counting from
// its end would make a job wait out that time twice.
func (l *watchedLock) note(err error, start time.Time) {
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
