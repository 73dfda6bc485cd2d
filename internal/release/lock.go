package release

import (
	"context"
	"fmt"
	"time"

	"github.com/shipper-dev/shipper/internal/lease"
)

// WithLockLease sets how long a lock outlives a killed holder (default 15
// s, lease.DefaultLease). Shorter takes a killed job's locks over sooner
// and renews more often.
func WithLockLease(d time.Duration) Option {
	return func(c *Configuration) {
		if d > 0 {
			c.lease = d
		}
	}
}

// newLocker is the Configuration's Lease lock: one Lease per release,
// "shipper-<release>", in the namespace the caller names.
func (c *Configuration) newLocker() *lease.Locker {
	return &lease.Locker{Client: c.client.CoordinationV1(), Lease: c.lease, Prefix: "shipper-", Log: c.log}
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
// cancellation is ignored (lease.Uninterruptible). A cancelled job
// therefore finishes the switch it began, or never begins it: every lock
// wait and check before it is cancelled as usual. It refuses to begin with
// a lock already lost or less than switchBudget left.
func uninterruptible(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := lease.Lost(ctx); err != nil {
		return nil, nil, fmt.Errorf("a lock was lost before the switch began (nothing changed): %w", err)
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < switchBudget {
		return nil, nil, fmt.Errorf("less than %s of --timeout left to switch production: not begun (nothing changed); run again with a longer --timeout", switchBudget)
	}
	ctx, cancel := lease.Uninterruptible(ctx)
	return ctx, cancel, nil
}
