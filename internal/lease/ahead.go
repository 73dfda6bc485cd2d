package lease

import (
	"context"
	"sync"
)

// LookAhead starts the elections of locks that the operation takes later,
// each nested in Do calls on ctx's: promote takes production's lock, then
// the commit's. Their Do calls take these elections over.
//
// client-go judges a Lease another holder has stopped renewing expired a
// lease after it first read it (its own clock, never the holder's), and
// an election started only once the outer lock was won began counting
// then: a job killed holding two locks cost the next one two leases, one
// after the other (a promote took 30.5-31.4 s, now 15.9-16.2 s). Started
// here, every election counts from the start, and the locks of a killed
// job all expire together. The order locks are taken in is unchanged,
// and with it the freedom from deadlock: an election reads its Lease from
// the start but writes it only once its Do asks, holding the outer locks.
// A write that had to wait goes against the Lease as read before it: if
// another job wrote it meanwhile, it conflicts and the election reads it
// again.
//
// The returned function ends the elections no Do took over.
func (l *Locker) LookAhead(ctx context.Context, locks ...Name) (context.Context, func()) {
	return l.lookAhead(ctx, false, locks)
}

// LookAheadNew is LookAhead for a lock in a namespace the operation made a
// moment ago (a deploy's new commit): no Lease can be there but one
// another operation makes from then on. Its election does not read the
// Lease first: it takes it as not there, and its first request is the
// Create that takes the lock, where the read and the Create were two, one
// after the other. A Lease made meanwhile makes that Create fail (it
// exists), and the election goes on as any whose Lease another made
// between its read and its Create: it reads the Lease and waits its turn,
// its count of that Lease's lease begun a retry period (a thirtieth of
// it) later than LookAhead's would have.
func (l *Locker) LookAheadNew(ctx context.Context, n Name) (context.Context, func()) {
	return l.lookAhead(ctx, true, []Name{n})
}

// lookAhead is LookAhead; absent: LookAheadNew's.
func (l *Locker) lookAhead(ctx context.Context, absent bool, locks []Name) (context.Context, func()) {
	a := &ahead{l: l, parent: aheadOf(ctx), elections: map[Name]*election{}}
	for _, n := range locks {
		if a.elections[n] != nil || l.startedAhead(ctx, n, false) != nil {
			continue
		}
		if e, err := l.elect(ctx, n, absent); err == nil { // else Do reports it
			a.elections[n] = e
		}
	}
	if len(a.elections) == 0 {
		return ctx, func() {}
	}
	return context.WithValue(ctx, aheadKey{}, a), func() {
		a.mu.Lock()
		left := a.elections
		a.elections = nil
		a.mu.Unlock()
		for n, e := range left {
			e.stop()
			<-e.ended
			// Taken (Take) but no Do came: given up. Not only when the
			// election saw itself win (started): a write cut by stop may
			// have applied unanswered, or client-go may return from a won
			// election before its leading callback runs. giveUp reads the
			// Lease first then, and leaves one it does not hold.
			select {
			case <-e.take:
				l.giveUp(e.lock, n.Namespace, l.Prefix+n.Name, e.id)
			default: // never written
			}
		}
	}
}

// Take lets the election LookAhead started for lock n in ctx take the
// lock now, before the Do that runs under it: for the first lock an
// operation takes, which no lock taken before it orders, so that its
// write goes out with the operation's own writes before that Do (a
// deploy makes a new namespace's isolation objects meanwhile) instead
// of after them. Do then runs fn at once if the lock was won; LookAhead's
// end gives up a lock taken that no Do came for. Without such an
// election, Take does nothing.
func (l *Locker) Take(ctx context.Context, n Name) {
	if e := l.startedAhead(ctx, n, false); e != nil {
		e.takeNow()
	}
}

type aheadKey struct{}

// ahead holds the elections LookAhead started that no Do has taken over
// yet.
type ahead struct {
	l         *Locker
	parent    *ahead
	mu        sync.Mutex
	elections map[Name]*election
}

func aheadOf(ctx context.Context) *ahead {
	a, _ := ctx.Value(aheadKey{}).(*ahead)
	return a
}

// startedAhead returns the election LookAhead started for n in ctx, if
// any, and with take takes it over: no one else will.
func (l *Locker) startedAhead(ctx context.Context, n Name, take bool) *election {
	for a := aheadOf(ctx); a != nil; a = a.parent {
		if a.l != l {
			continue
		}
		a.mu.Lock()
		e := a.elections[n]
		if take {
			delete(a.elections, n)
		}
		a.mu.Unlock()
		if e != nil {
			return e
		}
	}
	return nil
}
