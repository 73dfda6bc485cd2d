package release

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Production is what production serves: which commit, since which
// revision and when.
type Production struct {
	App      string    `json:"app"`
	Release  string    `json:"release"`
	SHA      string    `json:"sha"`
	Target   string    `json:"target"`
	Host     string    `json:"host"`
	URL      string    `json:"url"`
	Revision int       `json:"revision"`
	Status   string    `json:"status"`
	Since    time.Time `json:"since"`
}

// Promote points the production host at one commit. Production is its own
// release "<app>-production" (its record in its own namespace, so it
// outlives every preview) whose only object is an Ingress rendered into the
// promoted commit's namespace, routing the production host to that commit's
// Service. Each promotion is one revision in `helm history`.
//
// The production host never has zero routes while it switches: Helm's
// upgrade creates the objects of the new manifest (the Ingress in the new
// commit's namespace) before it deletes those only in the old one (the
// Ingress in the previous commit's namespace). For that moment both
// Ingresses route the host, each to a ready Service.
type Promote struct {
	cfg *Configuration

	Hosts Hosts
	// Values are the user's chart values (ingress class, TLS, annotations).
	Values map[string]any
}

// NewPromote returns a Promote.
func NewPromote(cfg *Configuration) *Promote { return &Promote{cfg: cfg} }

// Run promotes commit sha of app. It refuses a commit whose release is
// missing or not deployed.
func (p *Promote) Run(ctx context.Context, app, sha string) (*Production, error) {
	n, err := NewNames(app, sha)
	if err != nil {
		return nil, err
	}
	host, err := p.Hosts.Production(n)
	if err != nil {
		return nil, err
	}
	ch, err := p.cfg.Chart()
	if err != nil {
		return nil, err
	}
	url := p.Hosts.url(host)
	vals := mergeValues(p.Values, productionValues(n, host, url))
	if err := validateValues(ch, vals); err != nil {
		return nil, err
	}
	if err := p.cfg.requireDeployed(ctx, n, cached); err != nil {
		return nil, fmt.Errorf("promoting %s: %w", n.Release, err)
	}
	if err := p.cfg.ensureNamespace(ctx, n.ProductionNamespace, n.AppPart, RoleProduction, nil, nil); err != nil {
		return nil, err
	}
	var prod *Production
	err = p.cfg.withLock(ctx, n.ProductionNamespace, n.ProductionRelease, func(ctx context.Context) error {
		// Checked again under the lock, which Delete takes too: a delete of
		// the commit may have won the race since the check above. A GET of
		// the namespace answers that; a second list of release records would
		// wait for the apiserver's watch cache to catch up with the lease
		// write just made (up to 100 ms on Kubernetes 1.34).
		if err := p.cfg.requireNamespace(ctx, n); err != nil {
			return err
		}
		rel, err := p.cfg.installOrUpgrade(ctx, n.ProductionNamespace, n.ProductionRelease, ch, vals, releaseLabels(n))
		if err != nil {
			return err
		}
		prod = &Production{
			App: n.AppPart, Release: n.ProductionRelease, SHA: n.Short, Target: n.Release, Host: host, URL: url,
			Revision: rel.Version, Status: rel.Info.Status.String(), Since: rel.Info.LastDeployed.Time,
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("promoting %s to production: %w", n.Release, err)
	}
	p.cfg.log.Info("promoted", "release", n.Release, "production", n.ProductionRelease, "revision", prod.Revision, "url", url)
	return prod, nil
}

// requireDeployed refuses a commit whose preview release is missing or
// whose latest revision is not deployed (failed, or pending).
func (c *Configuration) requireDeployed(ctx context.Context, n Names, fresh bool) error {
	recs, err := c.records(ctx, n.Namespace, "name="+n.Release, fresh)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf("release %s does not exist: run `shipper deploy --sha %s` first", n.Release, n.Short)}
	}
	if recs[0].Status != "deployed" {
		return &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf("release %s is %s, not deployed: run `shipper deploy --sha %s` again and check its output", n.Release, recs[0].Status, n.Short)}
	}
	return nil
}

// requireNamespace refuses a commit whose namespace is gone or going.
func (c *Configuration) requireNamespace(ctx context.Context, n Names) error {
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, n.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || err == nil && ns.DeletionTimestamp != nil {
		return &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf("release %s was deleted meanwhile", n.Release)}
	}
	return err
}
