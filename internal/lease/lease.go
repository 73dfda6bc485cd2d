package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// DefaultLease is how long a Lease outlives its holder: a killed CI job's
// lock is taken over once it passes without renewal, counted from the
// next job's first look at the Lease (a promote after one killed holding
// both its locks took 15.9-16.2 s). The holder renews every thirtieth of
// it and gives up after two thirds (client-go's leader election timings,
// in the ratio its own defaults use).
//
// Not shorter, because a holder that cannot renew within those two
// thirds loses the lock and fails its job, while a killed job (SIGKILL: a
// cancelled one gets SIGTERM and gives up its locks) only delays the
// next. Across a restart of the test apiserver (down 2 s, as in the
// stress suite) Lease writes failed for 3.3-4.5 s on two busy cores: a 6
// s lease lost the lock in 3 of 4 restarts, 9 s in none but with 1.5 s to
// spare. 15 s renews within 10 s, as long as a waiting job rides out an
// unreachable apiserver (unreachableGrace), and leaves 5 s between a
// holder giving up and another taking over for writes in flight
// (Uninterruptible).
const DefaultLease = 15 * time.Second

// Locker takes Leases: the Lease of lock name in namespace is
// <Prefix><name>. Its zero value but Client is ready to use.
type Locker struct {
	Client coordinationv1client.LeasesGetter
	Lease  time.Duration // how long a lock outlives a killed holder; 0: DefaultLease
	Prefix string        // of every Lease's name
	Log    *slog.Logger  // "waiting for another operation" events; nil: none
}

// Name is one lock: the Lease <Prefix><Name> in Namespace.
type Name struct{ Namespace, Name string }

func (l *Locker) timings() (lease, renew, retry time.Duration) {
	lease = l.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	return lease, lease * 2 / 3, lease / 30
}

// Do runs fn while holding the Lease of name in namespace, so two jobs
// changing the same thing run one after the other. client-go's leader
// election does the acquiring and renewing. An election LookAhead started
// for the Lease is taken over rather than a new one started.
//
// fn's context ends when ctx does (a cancelled job) or when the lease is
// lost. The Lease is given up only after fn has returned, by the Locker
// itself (giveUp) rather than by client-go, which gives up a lease it
// failed to renew at once (ReleaseOnCancel), while fn may still be
// writing: Helm's storage and kube client ignore the context. Leader
// election runs on a context of its own, stopped once fn is done.
func (l *Locker) Do(ctx context.Context, namespace, name string, fn func(context.Context) error) error {
	e := l.startedAhead(ctx, Name{namespace, name}, true)
	if e == nil {
		var err error
		if e, err = l.elect(ctx, Name{namespace, name}, false); err != nil {
			return err
		}
	}
	e.job, e.fn = ctx, fn
	close(e.asked)
	e.takeNow()
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
	go e.stopOnFailure()
	<-e.ended
	select {
	case <-e.started:
		<-e.done
		// Nested in another Do's fn, the Lease is given up alongside that
		// lock's, which waits for it: the Leases an operation holds go in
		// one round trip, where one after the other took one each.
		giveUp := func() { l.giveUp(e.lock, namespace, l.Prefix+name, e.id) }
		if outer, ok := ctx.Value(givingUpKey{}).(*sync.WaitGroup); ok {
			outer.Add(1)
			go func() {
				defer outer.Done()
				giveUp()
				e.givingUp.Wait()
			}()
			return e.fnErr
		}
		giveUp()
		e.givingUp.Wait()
		return e.fnErr
	default:
		// A lock that failed was not won: its last request failed (one
		// that succeeds clears the failure), and giving it up would only
		// spend the retries of another request on an unreachable apiserver.
		if err := e.lock.failure(); err != nil {
			return fmt.Errorf("taking the lock %s/%s%s: %w", namespace, l.Prefix, name, err)
		}
		l.giveUp(e.lock, namespace, l.Prefix+name, e.id) // won as it was given up
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for the lock on %s/%s: %w", namespace, name, err)
		}
		return errors.New("lock on " + namespace + "/" + name + " not acquired")
	}
}

// DoAll runs fn holding the Leases of names in namespace, taken in the
// order given (sorted by the caller, so two operations never wait on each
// other), each watched from the start (LookAhead).
func (l *Locker) DoAll(ctx context.Context, namespace string, names []string, fn func(context.Context) error) error {
	if len(names) == 0 {
		return fn(ctx)
	}
	var next []Name
	for _, n := range names[1:] {
		next = append(next, Name{namespace, n})
	}
	ctx, stop := l.LookAhead(ctx, next...)
	defer stop()
	return l.Do(ctx, namespace, names[0], func(ctx context.Context) error {
		return l.DoAll(ctx, namespace, names[1:], fn)
	})
}

// givingUpKey carries, in a Do's fn context, the give-ups of the locks
// taken in fn, sent as their Do returned: that Do waits for them once it
// has sent its own.
type givingUpKey struct{}

// election is client-go's leader election for one Lease, running from
// elect on: it reads the Lease at once, but writes it (takes the lock)
// only once Do has asked for it, or Take let it.
type election struct {
	id    string
	lock  *watchedLock
	retry time.Duration
	stop  context.CancelFunc // ends the election: fn done, or given up
	asked chan struct{}      // closed by Do, after setting job and fn
	take  chan struct{}      // closed once the Lease may be written: by Do, or Take
	taken sync.Once          // closes take
	ended chan struct{}      // closed once the election has ended

	job           context.Context // Do's ctx and fn, set before asked is closed
	fn            func(context.Context) error
	givingUp      sync.WaitGroup // the give-ups of the locks taken in fn
	started, done chan struct{}  // fn about to run (or refused), and returned
	fnErr         error
	renewDeadline time.Duration
	describe      string // namespace/<Prefix><name>
}

// elect starts the election for the Lease of n, under a new identity;
// absent: its first read is not sent, the Lease taken as not there
// (LookAheadNew).
func (l *Locker) elect(ctx context.Context, n Name, absent bool) (*election, error) {
	id, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id += "-" + hex.EncodeToString(b)

	leaseDuration, renewDeadline, retryPeriod := l.timings()
	e := &election{
		id: id, retry: retryPeriod, renewDeadline: renewDeadline,
		asked: make(chan struct{}), take: make(chan struct{}), ended: make(chan struct{}), started: make(chan struct{}), done: make(chan struct{}),
		describe: n.Namespace + "/" + l.Prefix + n.Name,
	}
	e.lock = &watchedLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: n.Namespace, Name: l.Prefix + n.Name},
		Client:     l.Client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}, minRenewal: retryPeriod / 2, asked: e.take, absent: absent}
	leCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stop = stop
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            e.lock,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: false, // see giveUp
		Name:            n.Namespace + "/" + n.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: e.lead,
			OnStoppedLeading: func() {},
			OnNewLeader: func(holder string) {
				if holder != id && holder != "" && l.Log != nil {
					l.Log.Info("waiting for another operation to finish", "lease", e.describe, "holder", holder)
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

// stopOnFailure ends an election whose lock cannot be taken at all, while
// it waits for the lock.
func (e *election) stopOnFailure() {
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
}

// takeNow lets the election write the Lease.
func (e *election) takeNow() { e.taken.Do(func() { close(e.take) }) }

// lead runs fn once the lock is won: the Lease is written only after Do
// has set job and fn (watchedLock.asked), or Take let it be, and then fn
// waits for Do.
func (e *election) lead(leading context.Context) {
	close(e.started)
	defer close(e.done)
	defer e.stop()
	select {
	case <-e.asked:
	case <-leading.Done(): // given up before its Do (LookAhead's end: no Do reads this), or lost
		e.fnErr = e.lost(context.Cause(leading))
		return
	}
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
	fctx := context.WithValue(withHeld(e.job, leading), createdKey{}, e.lock.wasCreated())
	fctx, cancel := context.WithCancel(context.WithValue(fctx, givingUpKey{}, &e.givingUp))
	defer cancel()
	stop := context.AfterFunc(leading, cancel) // lease lost
	defer stop()
	e.fnErr = e.fn(fctx)
	if leading.Err() != nil && e.job.Err() == nil && e.fnErr != nil {
		e.fnErr = e.lost(e.fnErr)
	}
}

// lost is err of a job whose lock was lost.
func (e *election) lost(err error) error {
	return fmt.Errorf("lost the lock %s, which could not be renewed within %s (the next run repairs what this one left): %w",
		e.describe, e.renewDeadline, err)
}

// giveUp gives up the Lease lock holds: in one request against the Lease
// as lock last wrote it, else by reading it first (giveUpIfHeld).
func (l *Locker) giveUp(lock *watchedLock, namespace, lease, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !lock.giveUp(ctx) {
		l.giveUpIfHeld(namespace, lease, id)
	}
}

// giveUpIfHeld gives up the Lease if id still holds it, so the next
// operation need not wait for it to expire: holder emptied, duration one
// second, as client-go's own release does. A Lease that is gone (its
// namespace deleted) or cannot be reached expires by itself.
func (l *Locker) giveUpIfHeld(namespace, lease, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leases := l.Client.Leases(namespace)
	_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		le, err := leases.Get(ctx, lease, metav1.GetOptions{})
		if err != nil || le.Spec.HolderIdentity == nil || *le.Spec.HolderIdentity != id {
			return nil
		}
		now := metav1.NewMicroTime(time.Now())
		le.Spec.HolderIdentity, le.Spec.LeaseDurationSeconds = ptr.To(""), ptr.To[int32](1)
		le.Spec.RenewTime, le.Spec.AcquireTime = &now, &now
		_, err = leases.Update(ctx, le, metav1.UpdateOptions{})
		return err
	})
}
