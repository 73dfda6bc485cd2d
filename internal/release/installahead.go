package release

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	shipkube "github.com/shipper-dev/shipper/internal/kube"
	"github.com/shipper-dev/shipper/internal/lease"
)

// installAhead is a new commit's Helm install started before the deploy
// holds the commit's lock, its writes held back until it does.
//
// A deploy of a new commit makes the namespace, binds shipper's role
// there, then writes the namespace's isolation objects (ResourceQuota and
// LimitRange, then the NetworkPolicy) while it takes the commit's Lease;
// only then did Helm's install begin: its render, its resources' build
// and their existence checks (about 7 ms of a deploy's path, one after
// the other) before its first write. Started ahead, once the role is
// bound (Deploy.makeNamespace), the install does all that meanwhile, and
// every write it makes (the record, the resources, whatever code path
// sends them) waits at a kube.WriteGate in the transport of every client
// it has (openHeld). Under the lock (installLocked), once what must come
// before Helm's first write is done (the namespace isolated, the commit's
// secrets written), finish opens the gate; anything else (the Lease was
// not made by this deploy, isolation or a secret failed, the job ended)
// shuts it, and the install's writes fail unsent: nothing of it reaches
// the cluster, and the deploy goes on the usual way or stops as it would
// have. Its reads are the ones it would have made a few milliseconds
// later: the records it assumes (none, as for any release opened fresh)
// are confirmed by the Lease this deploy made (lease.Created), or the
// install is given up.
//
// Only where nothing under the lock changes what the install renders or
// finds (installsAhead): no secret environment or per-commit database
// (their Secret's version is a value), no migration Job, and no object of
// a kind this deploy writes in the namespace while the install reads
// ahead (Secrets, the isolation objects, Leases: writtenAlongside), whose
// existence Helm's check would have read too early.
type installAhead struct {
	gate   *shipkube.WriteGate
	cancel context.CancelFunc
	log    func() // says "installing", as installOrUpgrade does, once the writes may go
	done   chan struct{}
	rel    *release.Release
	err    error
}

// errNotAhead is what the writes of an install given up fail with.
var errNotAhead = errors.New("install started ahead given up before its first write")

// installsAhead reports whether dp's install may start ahead of its lock
// (installAhead): a commit production does not serve, whose install
// renders what the plan holds once the lock is held, and finds what it
// would have found then.
func (d *Deploy) installsAhead(dp *deployment) bool {
	return !dp.wasLive && len(d.Secrets) == 0 && d.cfg.db == nil && d.Migrate == "" &&
		!rendersAny(dp.plan.manifest, writtenAlongside)
}

// writtenAlongside are the kinds of the objects a deploy writes in a
// namespace it made while an install started ahead reads: the isolation
// objects, the commit's Lease, and the pull and gate Secrets. A chart that
// renders one of these kinds could name one of them, which Helm's
// existence check must then find: it installs under the lock.
var writtenAlongside = []string{"Secret", "NetworkPolicy", "ResourceQuota", "LimitRange", "Lease"}

// rendersAny reports whether manifest holds an object of one of kinds, or
// a document whose kind cannot be read (which may be one).
func rendersAny(manifest string, kinds []string) bool {
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head releaseutil.SimpleHead
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil || slices.Contains(kinds, head.Kind) {
			return true
		}
	}
	return false
}

// startInstall starts dp's install ahead, in ctx (the deploy's).
func (d *Deploy) startInstall(ctx context.Context, dp *deployment) *installAhead {
	n, p := dp.n, dp.plan
	a := &installAhead{gate: shipkube.NewWriteGate(), done: make(chan struct{})}
	ctx, a.cancel = context.WithCancel(ctx)
	a.log = func() { d.cfg.sayInstalling(p) }
	go func() {
		defer close(a.done)
		r, err := d.cfg.openHeld(n.Namespace, n.Release, a.gate)
		if err != nil {
			a.err = err
			return
		}
		a.rel, a.err = d.cfg.installOrUpgrade(ctx, r, p, nil)
	}()
	return a
}

// finish lets the install's writes go, under the lock ctx holds (whose
// end, a Lease lost or the job cancelled, ends the install's context as
// it would have ended one begun under it), and returns its outcome. A
// lock already lost, or a job already cancelled, shuts the gate instead:
// nothing is sent, and that is the outcome. redo is true when the install
// failed before its first write: nothing of it reached the cluster, and
// the caller installs the usual way.
func (a *installAhead) finish(ctx context.Context) (rel *release.Release, redo bool, err error) {
	if err := cmp.Or(lease.Lost(ctx), ctx.Err()); err != nil {
		a.abandon()
		return nil, false, err
	}
	stop := context.AfterFunc(ctx, a.cancel)
	defer stop()
	a.log()
	a.gate.Open()
	<-a.done
	return a.rel, a.err != nil && !a.gate.Tried(), a.err
}

// abandon gives the install up unless finish let its writes go: every
// write it holds or makes fails unsent, and its context ends (a read it
// waits for, too). It waits for the install to end. A nil a does
// nothing.
func (a *installAhead) abandon() {
	if a == nil {
		return
	}
	a.gate.Shut(errNotAhead)
	a.cancel()
	<-a.done
}

// openHeld opens release name in namespace as made fresh by this
// operation (no record: openReleaseOf with none), for an install started
// ahead: its Helm clients and its record writer send through gate.
func (c *Configuration) openHeld(namespace, name string, gate *shipkube.WriteGate) (*helmRelease, error) {
	rc := rest.CopyConfig(c.rest)
	rc.Wrap(gate.Wrap)
	cfg, err := c.helmVia(namespace, rc)
	if err != nil {
		return nil, err
	}
	core, err := typedcorev1.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	cfg.Releases.Driver = &knownDriver{Driver: cfg.Releases.Driver, write: &recordWriter{secrets: core.Secrets(namespace)}}
	return &helmRelease{cfg: cfg, namespace: namespace, name: name, fresh: true, announced: true}, nil
}
