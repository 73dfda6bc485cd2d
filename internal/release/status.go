package release

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// production reads what production serves now from the deployed revision's
// labels and the live Ingress: two requests, no release decoding. It sees
// a `helm rollback` done with the helm CLI like shipper's own.
func (c *Configuration) production(ctx context.Context, n Names) (*Production, error) {
	rec, err := c.deployedRecord(ctx, n.ProductionNamespace, n.ProductionRelease, consistent)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, errNoProduction(n)
	}
	target := n.AppPart + "-" + rec.SHA
	p := &Production{
		App: n.AppPart, Release: n.ProductionRelease, SHA: rec.SHA, Target: target,
		Revision: rec.Version, Status: rec.Status, Since: rec.Created,
	}
	ing, err := c.client.NetworkingV1().Ingresses(target).Get(ctx, n.ProductionRelease, metav1.GetOptions{})
	switch {
	case err == nil && len(ing.Spec.Rules) > 0:
		p.Host = ing.Spec.Rules[0].Host
		p.URL = nonEmpty(ing.Annotations[AnnotationURL], "https://"+p.Host)
	case err != nil && !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading the production Ingress: %w", err)
	}
	return p, nil
}

// Status reports one commit of an app, or its production.
type Status struct{ cfg *Configuration }

// NewStatus returns a Status.
func NewStatus(cfg *Configuration) *Status { return &Status{cfg: cfg} }

// Production returns what production of app serves.
func (s *Status) Production(ctx context.Context, app string) (*Production, error) {
	n, err := NewNames(app, "")
	if err != nil {
		return nil, err
	}
	return s.cfg.production(ctx, n)
}

// Commit returns one commit of app, or a usage error when it is not deployed.
func (s *Status) Commit(ctx context.Context, app, sha string) (*Commit, error) {
	n, err := NewNames(app, sha)
	if err != nil {
		return nil, err
	}
	commits, err := NewList(s.cfg).Run(ctx, app)
	if err != nil {
		return nil, err
	}
	for _, c := range commits {
		if c.Release == n.Release {
			return &c, nil
		}
	}
	return nil, &UsageError{Input: "commit", Value: sha, Rule: fmt.Sprintf("has no release %s", n.Release)}
}

// List reports every deployed commit of an app.
type List struct{ cfg *Configuration }

// NewList returns a List.
func NewList(cfg *Configuration) *List { return &List{cfg: cfg} }

// Run lists the commits of app, newest first, with the live one marked. It
// makes three requests whatever the number of releases in the cluster:
// the app's namespaces, the labels of its release records (metadata only),
// and production's record.
func (l *List) Run(ctx context.Context, app string) ([]Commit, error) {
	n, err := NewNames(app, "")
	if err != nil {
		return nil, err
	}
	nss, err := l.cfg.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{
		LabelSelector: fmt.Sprintf("%s=%s,%s=%s,%s=%s", LabelManagedBy, ManagedBy, LabelApp, n.AppPart, LabelRole, RolePreview),
	})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces of %s: %w", n.AppPart, err)
	}
	recs, err := l.cfg.records(ctx, "", LabelApp+"="+n.AppPart, consistent)
	if err != nil {
		return nil, err
	}
	latest := map[string]record{} // release name -> newest revision
	live := ""
	for _, r := range recs {
		if cur, ok := latest[r.Name]; !ok || r.Version > cur.Version {
			latest[r.Name] = r
		}
		if r.Name == n.ProductionRelease && r.Status == "deployed" {
			live = r.SHA
		}
	}
	out := make([]Commit, 0, len(nss.Items))
	for _, ns := range nss.Items {
		c := Commit{
			App: n.AppPart, Short: ns.Labels[LabelSHA], SHA: ns.Annotations[AnnotationSHA],
			Release: ns.Name, Namespace: ns.Name, URL: ns.Annotations[AnnotationURL],
			Status: "missing", Updated: ns.CreationTimestamp.Time,
		}
		c.Host = strings.TrimPrefix(strings.TrimPrefix(c.URL, "https://"), "http://")
		if r, ok := latest[ns.Name]; ok {
			c.Revision, c.Status, c.Updated = r.Version, r.Status, r.Created
		}
		if ns.DeletionTimestamp != nil {
			c.Status = "deleting"
		}
		c.Live = live != "" && c.Short == live
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Updated.Equal(out[j].Updated) {
			return out[i].Updated.After(out[j].Updated)
		}
		return out[i].Release < out[j].Release
	})
	return out, nil
}

// Age formats how long ago t was, as kubectl does ("5m", "3h", "2d").
func Age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
