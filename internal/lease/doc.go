// Package lease is shipper's lock: a coordination.k8s.io Lease per lock,
// taken, renewed and given up through client-go's leader election, so two
// CI jobs changing the same thing run one after the other.
//
// Design:
//
//	Locker.Do         runs fn holding the Lease <Prefix><name> in a
//	                  namespace; fn's context ends when the job's does or
//	                  the Lease is lost; the Lease is given up after fn
//	                  returns, by the Locker itself (giveUp), a nested
//	                  lock's alongside the lock it is nested in, whose Do
//	                  waits for it
//	Locker.DoAll      Do on several Leases of one namespace, nested in the
//	                  order given, each watched from the start
//	Locker.LookAhead  starts the elections of Leases taken later, nested in
//	                  Do calls on its context, so the Leases of a killed job
//	                  all expire together; each is read at once but written
//	                  only when its Do asks (watchedLock.asked), so the
//	                  order locks are taken in is unchanged
//	Locker.LookAheadNew
//	                  LookAhead for a Lease in a namespace the operation
//	                  has just made: its first request is the Create
//	Locker.Take       lets such an election write its Lease before its
//	                  Do, for an operation's first lock (a deploy's,
//	                  taken while the namespace is isolated); LookAhead's
//	                  end gives up one taken that no Do came for
//	Locker.Holder     who holds a Lease now, for a caller that must spare
//	                  what a running job works on
//	Lost, Uninterruptible
//	                  the locks a context holds: whether one was lost, and a
//	                  context that ignores the job's cancellation but still
//	                  ends when a lock is lost
//	Created           whether a Do made its Lease: no one held that lock
//	                  before, so nothing done under it is there yet
//
// A Lease that cannot be taken at all (no right, a namespace being
// deleted, an apiserver out of reach) is told from one another job holds
// (watched.go) and given up after a grace instead of waited for until the
// job's deadline.
//
// Nothing here imports internal/release (internal/depcheck_test.go): the
// release engine picks the Leases, their order and their names.
package lease
