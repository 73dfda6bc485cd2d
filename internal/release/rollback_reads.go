package release

import (
	"context"

	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/lease"
)

// A rollback's reads go out in two rounds, each with the requests of the
// step before (early.go): before the locks, with the ownership checks,
// the cached pick of the target, the read of production's namespace and
// of its Lease (rollbackStart); under both locks, with the fresh read of
// production's history, what the switch reads of the revision the cached
// pick named (rollbackGuess.send). A fresh read that names another
// revision leaves those reads unused: the switch reads its own.

// rollbackStart is what a rollback sends with its ownership checks.
type rollbackStart struct {
	ctx  context.Context // production's Lease looked ahead (nil: not sent)
	done func()
	ns   *early[*corev1.Namespace]
	pick *early[*rollbackGuess]
}

// send sends the reads: production's namespace, its Lease (an election
// that reads it, and writes it only once the lock is asked for:
// lease.Locker.LookAhead) and the cached pick.
func (s *rollbackStart) send(ctx context.Context, r *Rollback, n Names, to string) {
	c := r.cfg
	s.ctx, s.done = c.locker.LookAhead(ctx, lease.Name{Namespace: n.ProductionNamespace, Name: n.ProductionRelease})
	s.ns = readEarly(func() (*corev1.Namespace, error) {
		return c.client.CoreV1().Namespaces().Get(ctx, n.ProductionNamespace, metav1.GetOptions{})
	})
	s.pick = readEarly(func() (*rollbackGuess, error) { return r.guess(ctx, n, to) })
}

// lockCtx is the context production's lock is taken with.
func (s *rollbackStart) lockCtx(ctx context.Context) context.Context {
	if s.ctx == nil {
		return ctx
	}
	return s.ctx
}

// stop ends production's election if no Do took it over.
func (s *rollbackStart) stop() {
	if s.done != nil {
		s.done()
	}
}

// rollbackGuess is the cached pick: the target revision, its commit, and
// the newest revision of production's history.
type rollbackGuess struct {
	target record
	tn     Names
	newest int
}

// guess is the cached pick (pick, not fresh).
func (r *Rollback) guess(ctx context.Context, n Names, to string) (*rollbackGuess, error) {
	target, tn, hist, err := r.pick(ctx, n, to, cached)
	if err != nil {
		return nil, err
	}
	return &rollbackGuess{target: target, tn: tn, newest: hist[0].Version}, nil
}

// send sends, under both locks, what the switch to the guessed revision
// reads: that revision and the newest, the records of its commit
// (requireServing) and the list of commits at production size, and with
// env its commit's env Secret (checkCommitDatabase, when the job has no
// production database of its own). Nil for a nil g, or when production's
// Helm configuration cannot be made (the switch then says why).
func (g *rollbackGuess) send(ctx context.Context, c *Configuration, n Names, env bool) *rollbackReads {
	if g == nil {
		return nil
	}
	cfg, err := c.helm(n.ProductionNamespace)
	if err != nil {
		return nil
	}
	rd := &rollbackReads{revs: map[int]*early[*release.Release]{}, sw: &switchReads{commit: g.tn.Release}}
	for _, v := range []int{g.target.Version, g.newest} {
		if rd.revs[v] == nil {
			rd.revs[v] = readEarly(func() (*release.Release, error) { return getRelease(cfg, n.ProductionRelease, v) })
		}
	}
	rd.sw.records = readEarly(func() ([]record, error) {
		return c.records(ctx, g.tn.Namespace, "name="+g.tn.Release, consistent)
	})
	rd.sw.sized = readEarly(func() ([]string, error) { return c.sizedCommits(ctx, n) })
	if env {
		tn := g.tn
		rd.env = envReads{tn.Release: readEarly(func() (map[string]string, error) { return c.envSecretData(ctx, tn) })}
	}
	return rd
}

// rollbackReads are the reads rollbackGuess.send sent.
type rollbackReads struct {
	revs map[int]*early[*release.Release]
	sw   *switchReads
	env  envReads
}

// envs are the env Secret reads sent, nil when none.
func (rd *rollbackReads) envs() envReads {
	if rd == nil {
		return nil
	}
	return rd.env
}

// revision is the read of revision v, nil when none was sent.
func (rd *rollbackReads) revision(v int) *early[*release.Release] {
	if rd == nil {
		return nil
	}
	return rd.revs[v]
}

// forSwitch are the reads the switch takes.
func (rd *rollbackReads) forSwitch() *switchReads {
	if rd == nil {
		return nil
	}
	return rd.sw
}
