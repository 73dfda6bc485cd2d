package release

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// record is one revision of a Helm release as its storage Secret's labels
// describe it. Reading labels through the metadata API costs one request
// and no decoding: Helm's own List and History fetch every Secret whole and
// gunzip each release, which is what makes `helm list -A` slow on a busy
// cluster.
type record struct {
	Name, Namespace string
	// Secret is the record's Secret (sh.helm.release.v1.<name>.v<version>).
	Secret   string
	Version  int
	Status   string
	App, SHA string
	Project  string
	Created  time.Time
	// Canary and CanaryWeight: a production revision's canary (LabelCanary).
	Canary       string
	CanaryWeight int
	// Commit is the full SHA the revision was made with (LabelCommit).
	Commit string
	// Ref and CommitTime: an alias's revision's branch and the commit
	// time (Unix nanoseconds) of the commit it routes to.
	Ref        string
	CommitTime int64
	// Sizing: a commit's revision made by promote's size-up ("up") or
	// size-down ("down"), LabelSizing; "" for a deploy's.
	Sizing string
	// Protect: a commit's revision's protection (LabelProtect), "" from
	// before protection.
	Protect string
	// Labels are all of the record's labels, Helm's own included (what
	// Helm's Query gives a release it reads: knownDriver).
	Labels map[string]string
}

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// Release labels shipper asks Helm to store on each revision (Install and
// Upgrade .Labels). Helm copies a revision's labels on rollback, so they
// stay true after a `helm rollback` too.
func (c *Configuration) releaseLabels(n Names) map[string]string {
	l := map[string]string{LabelApp: n.AppPart, LabelSHA: n.Short, LabelCommit: n.SHA}
	if c.project.ID != "" {
		l[LabelProject] = c.project.ID
	}
	return l
}

// LabelCommit records on each Helm revision the SHA it was made with (the
// full one when GitLab gives it; a label value holds 40 hex characters).
const LabelCommit = "shipper.dev/commit"

// LabelSizing marks a commit's revision that promote's size-up ("up") or
// size-down ("down") made (sizing.go); a deploy's revision drops it.
const LabelSizing = "shipper.dev/sizing"

// LabelCanary and LabelCanaryWeight record on a production revision of a
// canary step the canary commit's short SHA and its percent of requests;
// LabelSHA stays the commit that serves the rest (the live one).
const (
	LabelCanary       = "shipper.dev/canary"
	LabelCanaryWeight = "shipper.dev/canary-weight"
)

// Read freshness of records. A consistent list waits until the apiserver's
// watch cache has caught up with etcd, which on Kubernetes 1.34 takes up
// to 100 ms after any write; a cached list answers at once but may miss
// the last few milliseconds of writes. Cached reads serve checks that a
// later consistent step repeats (under a lock, or by Helm itself).
const (
	cached     = false
	consistent = true
)

// records lists the revisions matching selector (added to owner=helm) in
// namespace ("" for all), newest version first per release.
func (c *Configuration) records(ctx context.Context, namespace, selector string, fresh bool) ([]record, error) {
	sel := "owner=helm"
	if selector != "" {
		sel += "," + selector
	}
	opts := metav1.ListOptions{LabelSelector: sel}
	if !fresh {
		opts.ResourceVersion = "0"
	}
	list, err := c.metadata.Resource(secretsGVR).Namespace(namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing Helm release records (%s): %w", sel, err)
	}
	out := make([]record, 0, len(list.Items))
	for _, m := range list.Items {
		v, err := strconv.Atoi(m.Labels["version"])
		if err != nil {
			continue // not a Helm v3 record
		}
		weight, _ := strconv.Atoi(m.Labels[LabelCanaryWeight])
		when, _ := strconv.ParseInt(m.Labels[LabelCommitTime], 10, 64)
		out = append(out, record{
			Name: m.Labels["name"], Namespace: m.Namespace, Secret: m.Name, Version: v, Status: m.Labels["status"],
			App: m.Labels[LabelApp], SHA: m.Labels[LabelSHA], Project: m.Labels[LabelProject], Created: m.CreationTimestamp.Time,
			Canary: m.Labels[LabelCanary], CanaryWeight: weight, Commit: m.Labels[LabelCommit],
			Ref: m.Labels[LabelRef], CommitTime: when, Sizing: m.Labels[LabelSizing], Labels: m.Labels,
			Protect: m.Labels[LabelProtect],
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version > out[j].Version
	})
	return out, nil
}

// deployedRecord returns the deployed revision of release name in
// namespace, or nil when it has none.
func (c *Configuration) deployedRecord(ctx context.Context, namespace, name string, fresh bool) (*record, error) {
	recs, err := c.records(ctx, namespace, "name="+name+",status=deployed", fresh)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return &recs[0], nil
}

// listConcurrency bounds the record lists appRecords runs at once.
const listConcurrency = 8

// appRecords lists the release records of n's app. One request across all
// namespaces when the credentials may list Secrets cluster-wide (an admin);
// else, as with shipper's least-privilege role, which has no cluster-wide
// Secret right by design, one request per namespace of the app, a few at
// a time.
func (c *Configuration) appRecords(ctx context.Context, n Names, namespaces []string) ([]record, error) {
	return c.recordsIn(ctx, LabelApp+"="+n.AppPart, namespaces)
}

// recordsIn lists the release records matching sel: across all namespaces
// in one request, else in each of namespaces (appRecords).
func (c *Configuration) recordsIn(ctx context.Context, sel string, namespaces []string) ([]record, error) {
	recs, err := c.records(ctx, "", sel, consistent)
	if !apierrors.IsForbidden(err) {
		return recs, err
	}
	var (
		mu  sync.Mutex
		out []record
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	for _, ns := range namespaces {
		g.Go(func() error {
			r, err := c.records(gctx, ns, sel, consistent)
			if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
				return nil // a namespace being deleted, or production not made yet
			}
			if err != nil {
				return err
			}
			mu.Lock()
			out = append(out, r...)
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}
