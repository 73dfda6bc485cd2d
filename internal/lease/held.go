package lease

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// heldKey carries the contexts of the locks an operation holds (each ends
// when its lease is lost), for Lost and Uninterruptible.
type heldKey struct{}

func withHeld(ctx context.Context, leading context.Context) context.Context {
	held, _ := ctx.Value(heldKey{}).([]context.Context)
	return context.WithValue(ctx, heldKey{}, append(held[:len(held):len(held)], leading))
}

func heldBy(ctx context.Context) []context.Context {
	held, _ := ctx.Value(heldKey{}).([]context.Context)
	return held
}

// createdKey marks a Do's fn context whose Lease that Do created.
type createdKey struct{}

// Created reports whether the innermost lock ctx holds (the Do whose fn
// was given ctx) was taken by creating its Lease: no operation had held
// that lock before, in that namespace's life (a Lease goes only with its
// namespace; giving one up keeps it).
func Created(ctx context.Context) bool {
	created, _ := ctx.Value(createdKey{}).(bool)
	return created
}

// Lost returns why a lock ctx holds (a Do's fn context) was lost, nil
// while every one is held.
func Lost(ctx context.Context) error {
	for _, leading := range heldBy(ctx) {
		if err := context.Cause(leading); err != nil {
			return err
		}
	}
	return nil
}

// Uninterruptible returns a context for a step that must not stop half
// way when the job is cancelled: it ignores ctx's cancellation but keeps
// its deadline, and still ends when a lock ctx holds is lost (another
// operation may take over). Check Lost first: a lock already lost ends it
// at once. (This asks the step to stop; it does not fence its writes: the
// lease outlives a lost renewal by a third of its duration, which is the
// margin.)
func Uninterruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	held := heldBy(ctx)
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
	}
}

// Holder names the holder of the Lease of name in namespace when it is
// held and not expired at now, "" otherwise.
func (l *Locker) Holder(ctx context.Context, namespace, name string, now time.Time) (string, error) {
	le, err := l.Client.Leases(namespace).Get(ctx, l.Prefix+name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		return "", nil // never locked, or a namespace whose RoleBinding a killed job never made
	}
	if err != nil {
		return "", fmt.Errorf("reading the lock of %s: %w", name, err)
	}
	s := le.Spec
	if s.HolderIdentity == nil || *s.HolderIdentity == "" || s.RenewTime == nil || s.LeaseDurationSeconds == nil {
		return "", nil
	}
	if s.RenewTime.Add(time.Duration(*s.LeaseDurationSeconds) * time.Second).Before(now) {
		return "", nil // a killed job's: expired
	}
	return *s.HolderIdentity, nil
}
