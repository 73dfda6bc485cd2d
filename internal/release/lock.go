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
// lost. The lease is released only after fn has returned: leader election
// runs on a context of its own, stopped once fn is done, so a cancelled
// job never releases the lock while its operation is still writing.
func (c *Configuration) withLock(ctx context.Context, namespace, name string, fn func(context.Context) error) error {
	id, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id += "-" + hex.EncodeToString(b)

	lock := &watchedLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: "shipper-" + name},
		Client:     c.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}}
	leaseDuration, renewDeadline, retryPeriod := c.leaseTimings()
	leCtx, stopLE := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLE()
	started, done := make(chan struct{}), make(chan struct{})
	var fnErr error
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: true,
		Name:            namespace + "/" + name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leading context.Context) {
				close(started)
				defer close(done)
				if err := ctx.Err(); err != nil { // cancelled as the lease was won
					fnErr = err
					stopLE()
					return
				}
				fctx, cancel := context.WithCancel(ctx)
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
		return fnErr
	default:
		if err := lock.failure(); err != nil {
			return fmt.Errorf("taking the lock %s/shipper-%s: %w", namespace, name, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for the lock on %s/%s: %w", namespace, name, err)
		}
		return errors.New("lock on " + namespace + "/" + name + " not acquired")
	}
}
