package release

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// defaultLease is how long a Lease outlives its holder: a killed CI job's
// lock is taken over once it passes without renewal. The holder renews
// every thirtieth of it and gives up after two thirds (client-go's
// leader election timings, in the ratio its own defaults use).
const defaultLease = 15 * time.Second

// WithLockLease sets how long a lock outlives a killed holder (default 15
// s). Shorter takes a killed job's locks over sooner and renews more often.
func WithLockLease(d time.Duration) Option {
	return func(c *Configuration) {
		if d > 0 {
			c.lease = d
		}
	}
}

func (c *Configuration) leaseTimings() (lease, renew, retry time.Duration) {
	lease = c.lease
	if lease <= 0 {
		lease = defaultLease
	}
	return lease, lease * 2 / 3, lease / 30
}

// withLock runs fn while holding the coordination.k8s.io Lease
// "shipper-<name>" in namespace, so two CI jobs changing the same release
// run one after the other. client-go's leader election does the acquiring,
// renewing and releasing.
//
// fn's context ends when ctx does (a cancelled job) or when the lease is
// lost. The lease is released only after fn has returned, by shipper
// itself (releaseLease) rather than by client-go, which releases a lease
// it failed to renew at once (ReleaseOnCancel), while fn may still be
// writing: Helm's storage and kube client ignore the context. Leader
// election runs on a context of its own, stopped once fn is done.
func (c *Configuration) withLock(ctx context.Context, namespace, name string, fn func(context.Context) error) error {
	id, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id += "-" + hex.EncodeToString(b)

	leaseDuration, renewDeadline, retryPeriod := c.leaseTimings()
	lock := &watchedLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: "shipper-" + name},
		Client:     c.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}, minRenewal: retryPeriod / 2}
	leCtx, stopLE := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLE()
	started, done := make(chan struct{}), make(chan struct{})
	var fnErr error
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: false, // see releaseLease
		Name:            namespace + "/" + name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leading context.Context) {
				close(started)
				defer close(done)
				// Cancelled as the lease was won, or given up (the job's end,
				// a lock that failed) while client-go was winning it: fn
				// never runs without the lock.
				if err := context.Cause(leading); err != nil {
					fnErr = err
					stopLE()
					return
				}
				if err := ctx.Err(); err != nil {
					fnErr = err
					stopLE()
					return
				}
				fctx, cancel := context.WithCancel(withHeld(ctx, leading))
				defer cancel()
				stop := context.AfterFunc(leading, cancel) // lease lost
				defer stop()
				fnErr = fn(fctx)
				if leading.Err() != nil && ctx.Err() == nil && fnErr != nil {
					fnErr = fmt.Errorf("lost the lock %s/shipper-%s, which could not be renewed within %s (the next run repairs what this one left): %w",
						namespace, name, renewDeadline, fnErr)
				}
				stopLE()
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(holder string) {
				if holder != id {
					c.log.Info("waiting for another operation to finish", "lease", namespace+"/shipper-"+name, "holder", holder)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	// A job cancelled while it waits for the lock stops waiting.
	stopWaiting := context.AfterFunc(ctx, func() {
		select {
		case <-started:
		default:
			stopLE()
		}
	})
	defer stopWaiting()
	// So does one whose lock cannot be taken at all.
	go func() {
		t := time.NewTicker(retryPeriod / 2)
		defer t.Stop()
		for {
			select {
			case <-started:
				return
			case <-leCtx.Done():
				return
			case <-t.C:
				if lock.failure() != nil {
					stopLE()
					return
				}
			}
		}
	}()
	le.Run(leCtx)
	select {
	case <-started:
		<-done
		c.release(lock, namespace, "shipper-"+name, id)
		return fnErr
	default:
		// A lock that failed was not won: its last request failed (one
		// that succeeds clears the failure), and releasing it would only
		// spend the retries of another request on an unreachable apiserver.
		if err := lock.failure(); err != nil {
			return fmt.Errorf("taking the lock %s/shipper-%s: %w", namespace, name, err)
		}
		c.release(lock, namespace, "shipper-"+name, id) // won as it was given up
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for the lock on %s/%s: %w", namespace, name, err)
		}
		return errors.New("lock on " + namespace + "/" + name + " not acquired")
	}
}

// release gives up the Lease lock holds: in one request against the Lease
// as lock last wrote it, else by reading it first (releaseLease).
func (c *Configuration) release(lock *watchedLock, namespace, name, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !lock.release(ctx) {
		c.releaseLease(namespace, name, id)
	}
}

// releaseLease gives up the Lease if id still holds it, so the next
// operation need not wait for it to expire: holder emptied, duration one
// second, as client-go's own release does. A Lease that is gone (its
// namespace deleted) or cannot be reached expires by itself.
func (c *Configuration) releaseLease(namespace, name, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leases := c.client.CoordinationV1().Leases(namespace)
	_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != id {
			return nil
		}
		now := metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = ptr.To(""), ptr.To[int32](1)
		l.Spec.RenewTime, l.Spec.AcquireTime = &now, &now
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
}

// heldKey carries the contexts of the locks an operation holds (each ends
// when its lease is lost), for uninterruptible.
type heldKey struct{}

func withHeld(ctx context.Context, leading context.Context) context.Context {
	held, _ := ctx.Value(heldKey{}).([]context.Context)
	return context.WithValue(ctx, heldKey{}, append(held[:len(held):len(held)], leading))
}

// switchBudget is the least time before the deadline (--timeout) a
// production switch starts with: Helm's upgrade goes on writing once its
// context ends (in a goroutine of its own), so a switch cut by the
// deadline is the half switch uninterruptible exists to prevent.
var switchBudget = 10 * time.Second

// uninterruptible returns the context for a step that must not stop half
// way when the job is cancelled (GitLab sends SIGTERM): a production switch
// and the sweep of stray routes after it take a fraction of a second, and
// cut in between they leave the host routed twice until the next run. The
// step still ends when a lock ctx holds is lost (another operation may
// take over) and at ctx's deadline (--timeout); only the job's
// cancellation is ignored. A cancelled job therefore finishes the switch it
// began, or never begins it: every lock wait and check before it is
// cancelled as usual. It refuses to begin with a lock already lost or less
// than switchBudget left. (This asks Helm to stop; it does not fence
// Helm's writes: the lock's lease outlives a lost renewal by a third of
// its duration, which is the margin.)
func uninterruptible(ctx context.Context) (context.Context, context.CancelFunc, error) {
	held, _ := ctx.Value(heldKey{}).([]context.Context)
	for _, leading := range held {
		if err := context.Cause(leading); err != nil {
			return nil, nil, fmt.Errorf("a lock was lost before the switch began (nothing changed): %w", err)
		}
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < switchBudget {
		return nil, nil, fmt.Errorf("less than %s of --timeout left to switch production: not begun (nothing changed); run again with a longer --timeout", switchBudget)
	}
	out := context.WithoutCancel(ctx)
	var cancel context.CancelFunc
	if d, ok := ctx.Deadline(); ok {
		out, cancel = context.WithDeadline(out, d)
	} else {
		out, cancel = context.WithCancel(out)
	}
	stops := make([]func() bool, 0, len(held))
	for _, leading := range held {
		stops = append(stops, context.AfterFunc(leading, cancel))
	}
	return out, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}, nil
}
