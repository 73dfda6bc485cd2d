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
// lock is taken over once it passes without renewal, counted from the
// next job's first look at the Lease (a promote after one killed holding
// both its locks took 15.9-16.2 s). The holder renews every thirtieth of
// it and gives up after two thirds (client-go's leader election timings,
// in the ratio its own defaults use).
//
// Not shorter, because a holder that cannot renew within those two
// thirds loses the lock and fails its job, while a killed job (SIGKILL: a
// cancelled one gets SIGTERM and releases its locks) only delays the
// next. Across a restart of the test apiserver (down 2 s, as in the
// stress suite) Lease writes failed for 3.3-4.5 s on two busy cores: a 6
// s lease lost the lock in 3 of 4 restarts, 9 s in none but with 1.5 s to
// spare. 15 s renews within 10 s, as long as a waiting job rides out an
// unreachable apiserver (unreachableGrace), and leaves 5 s between a
// holder giving up and another taking over for Helm writes in flight
// (uninterruptible).
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
// renewing and releasing. An election lookAhead started for the Lease is
// taken over rather than a new one started.
//
// fn's context ends when ctx does (a cancelled job) or when the lease is
// lost. The lease is released only after fn has returned, by shipper
// itself (releaseLease) rather than by client-go, which releases a lease
// it failed to renew at once (ReleaseOnCancel), while fn may still be
// writing: Helm's storage and kube client ignore the context. Leader
// election runs on a context of its own, stopped once fn is done.
func (c *Configuration) withLock(ctx context.Context, namespace, name string, fn func(context.Context) error) error {
	e := startedAhead(ctx, c, lockName{namespace, name}, true)
	if e == nil {
		var err error
		if e, err = c.elect(ctx, lockName{namespace, name}); err != nil {
			return err
		}
	}
	e.job, e.fn = ctx, fn
	close(e.asked)
	// A job cancelled while it waits for the lock stops waiting.
	stopWaiting := context.AfterFunc(ctx, func() {
		select {
		case <-e.started:
		default:
			e.stop()
		}
	})
	defer stopWaiting()
	// So does one whose lock cannot be taken at all.
	go func() {
		t := time.NewTicker(e.retry / 2)
		defer t.Stop()
		for {
			select {
			case <-e.started:
				return
			case <-e.ended:
				return
			case <-t.C:
				if e.lock.failure() != nil {
					e.stop()
					return
				}
			}
		}
	}()
	<-e.ended
	select {
	case <-e.started:
		<-e.done
		c.release(e.lock, namespace, "shipper-"+name, e.id)
		return e.fnErr
	default:
		// A lock that failed was not won: its last request failed (one
		// that succeeds clears the failure), and releasing it would only
		// spend the retries of another request on an unreachable apiserver.
		if err := e.lock.failure(); err != nil {
			return fmt.Errorf("taking the lock %s/shipper-%s: %w", namespace, name, err)
		}
		c.release(e.lock, namespace, "shipper-"+name, e.id) // won as it was given up
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for the lock on %s/%s: %w", namespace, name, err)
		}
		return errors.New("lock on " + namespace + "/" + name + " not acquired")
	}
}

// election is client-go's leader election for one Lease, running from
// elect on: it reads the Lease at once, but writes it (takes the lock)
// only once withLock has asked for it.
type election struct {
	id    string
	lock  *watchedLock
	retry time.Duration
	stop  context.CancelFunc // ends the election: fn done, or given up
	asked chan struct{}      // closed by withLock, after setting job and fn
	ended chan struct{}      // closed once the election has ended

	job           context.Context // withLock's ctx and fn, set before asked is closed
	fn            func(context.Context) error
	started, done chan struct{} // fn about to run (or refused), and returned
	fnErr         error
	renewDeadline time.Duration
	describe      string // namespace/shipper-<release>
}

// elect starts the election for the Lease of l, under a new identity.
func (c *Configuration) elect(ctx context.Context, l lockName) (*election, error) {
	id, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id += "-" + hex.EncodeToString(b)

	leaseDuration, renewDeadline, retryPeriod := c.leaseTimings()
	e := &election{
		id: id, retry: retryPeriod, renewDeadline: renewDeadline,
		asked: make(chan struct{}), ended: make(chan struct{}), started: make(chan struct{}), done: make(chan struct{}),
		describe: l.namespace + "/shipper-" + l.release,
	}
	e.lock = &watchedLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: l.namespace, Name: "shipper-" + l.release},
		Client:     c.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}, minRenewal: retryPeriod / 2, asked: e.asked}
	leCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stop = stop
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            e.lock,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: false, // see releaseLease
		Name:            l.namespace + "/" + l.release,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: e.lead,
			OnStoppedLeading: func() {},
			OnNewLeader: func(holder string) {
				if holder != id && holder != "" {
					c.log.Info("waiting for another operation to finish", "lease", e.describe, "holder", holder)
				}
			},
		},
	})
	if err != nil {
		stop()
		return nil, err
	}
	go func() {
		defer close(e.ended)
		le.Run(leCtx)
	}()
	return e, nil
}

// lead runs fn once the lock is won: the Lease is written only after
// withLock has set job and fn (watchedLock.asked).
func (e *election) lead(leading context.Context) {
	close(e.started)
	defer close(e.done)
	defer e.stop()
	// Cancelled as the lease was won, or given up (the job's end, a lock
	// that failed) while client-go was winning it: fn never runs without
	// the lock.
	if err := context.Cause(leading); err != nil {
		e.fnErr = err
		return
	}
	if err := e.job.Err(); err != nil {
		e.fnErr = err
		return
	}
	fctx, cancel := context.WithCancel(withHeld(e.job, leading))
	defer cancel()
	stop := context.AfterFunc(leading, cancel) // lease lost
	defer stop()
	e.fnErr = e.fn(fctx)
	if leading.Err() != nil && e.job.Err() == nil && e.fnErr != nil {
		e.fnErr = fmt.Errorf("lost the lock %s, which could not be renewed within %s (the next run repairs what this one left): %w",
			e.describe, e.renewDeadline, e.fnErr)
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
