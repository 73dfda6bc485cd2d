package release

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// List reports every deployed commit of an app.
type List struct{ cfg *Configuration }

// NewList returns a List.
func NewList(cfg *Configuration) *List { return &List{cfg: cfg} }

// Run lists the commits of n's app, newest first, with the live one marked. It
// makes three requests whatever the number of releases in the cluster:
// the app's namespaces, the labels of its release records (metadata only),
// and production's record.
func (l *List) Run(ctx context.Context, n Names) ([]Commit, error) {
	if err := l.cfg.beginRead(ctx, n); err != nil {
		return nil, err
	}
	app, err := l.cfg.readApp(ctx, n)
	if err != nil {
		return nil, err
	}
	return app.commits(n), nil
}

// commits are the app's commits, newest first, with the live one marked.
func (app *appState) commits(n Names) []Commit {
	var live record
	if app.live != nil {
		live = *app.live
	}
	out := make([]Commit, 0, len(app.namespaces))
	for _, ns := range app.namespaces {
		c := Commit{
			App: n.AppPart, Short: ns.Labels[LabelSHA], SHA: ns.Annotations[AnnotationSHA],
			Release: ns.Name, Namespace: ns.Name, URL: ns.Annotations[AnnotationURL],
			Status: "missing", Updated: ns.CreationTimestamp.Time,
			Ref: ns.Labels[LabelRef], Aliases: app.aliasesOf(ns.Labels[LabelSHA]),
		}
		c.Host = strings.TrimPrefix(strings.TrimPrefix(c.URL, "https://"), "http://")
		if r, ok := app.latest[ns.Name]; ok {
			c.Revision, c.Status, c.Updated, c.Protect = r.Version, r.Status, r.Created, r.Protect
		}
		if ns.DeletionTimestamp != nil {
			c.Status = "deleting"
		}
		switch {
		case live.SHA != "" && c.Short == live.SHA:
			c.Live, c.Weight = true, 100-live.CanaryWeight
		case live.Canary != "" && c.Short == live.Canary:
			c.Canary, c.Weight = true, live.CanaryWeight
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Updated.Equal(out[j].Updated) {
			return out[i].Updated.After(out[j].Updated)
		}
		return out[i].Release < out[j].Release
	})
	return out
}

// All lists the commits of every app of the Configuration's project (of
// every project when it has none: an administrator's view), by app, then
// newest first. Two requests when the credentials may list Secrets
// cluster-wide: the preview namespaces, then the labels of the apps'
// release records; with shipper's least-privilege role, one request per
// namespace for the records (appRecords), as List does for one app.
func (l *List) All(ctx context.Context) ([]Commit, error) {
	if err := l.cfg.online(); err != nil {
		return nil, err
	}
	if err := l.cfg.requireOwnToken(ctx); err != nil {
		return nil, err
	}
	sel := fmt.Sprintf("%s=%s,%s=%s", LabelManagedBy, ManagedBy, LabelRole, RolePreview)
	if l.cfg.project.ID != "" {
		sel += "," + LabelProject + "=" + l.cfg.project.ID
	}
	list, err := l.cfg.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing the preview namespaces: %w", err)
	}
	byApp := map[string][]corev1.Namespace{}
	names := map[string]Names{}
	spaces := map[string]bool{}
	for _, ns := range list.Items {
		app := ns.Labels[LabelApp]
		n, err := NewNames(app, "")
		if err != nil || n.AppPart != app {
			continue // not a name shipper makes
		}
		byApp[app] = append(byApp[app], ns)
		names[app] = n
		spaces[ns.Name], spaces[n.ProductionNamespace] = true, true
	}
	recSel := LabelApp
	if l.cfg.project.ID != "" {
		// The project's records only, wherever they are: a namespace
		// named like an app's production but made by another project
		// (two projects racing for one app name) shows nothing of it.
		recSel += "," + LabelProject + "=" + l.cfg.project.ID
	}
	recs, err := l.cfg.recordsIn(ctx, recSel, slices.Sorted(maps.Keys(spaces)))
	if err != nil {
		return nil, err
	}
	byAppRecs := map[string][]record{}
	for _, r := range recs {
		if spaces[r.Namespace] {
			byAppRecs[r.App] = append(byAppRecs[r.App], r)
		}
	}
	var out []Commit
	for _, app := range slices.Sorted(maps.Keys(byApp)) {
		n := names[app]
		out = append(out, newAppState(n, byApp[app], byAppRecs[app]).commits(n)...)
	}
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

// appState is what List and Check read of an app: its preview namespaces,
// the newest revision of each of its releases, and production's deployed
// revision (nil when there is none).
type appState struct {
	namespaces []corev1.Namespace
	latest     map[string]record
	live       *record
	// aliases are the deployed revisions of the app's branch aliases, by
	// release.
	aliases map[string]record
}

// aliasesOf are the refs whose alias serves the commit short, sorted.
func (a *appState) aliasesOf(short string) []string {
	var out []string
	for _, r := range a.aliases {
		if r.SHA == short {
			out = append(out, r.Ref)
		}
	}
	sort.Strings(out)
	return out
}

// readApp reads n's app in a few requests whatever the number of
// releases in the cluster: the app's namespaces, then the labels of its
// release records (metadata only; appRecords).
func (c *Configuration) readApp(ctx context.Context, n Names) (*appState, error) {
	nss, err := c.previewNamespaces(ctx, n)
	if err != nil {
		return nil, err
	}
	spaces := []string{n.ProductionNamespace}
	for _, ns := range nss {
		spaces = append(spaces, ns.Name)
	}
	recs, err := c.appRecords(ctx, n, spaces)
	if err != nil {
		return nil, err
	}
	return newAppState(n, nss, recs), nil
}

// newAppState folds n's app's preview namespaces and release records.
func newAppState(n Names, nss []corev1.Namespace, recs []record) *appState {
	app := &appState{namespaces: nss, latest: map[string]record{}, aliases: map[string]record{}}
	for i, r := range recs {
		if cur, ok := app.latest[r.Name]; !ok || r.Version > cur.Version {
			app.latest[r.Name] = r
		}
		if r.Ref != "" && r.Namespace == n.ProductionNamespace && r.Status == "deployed" {
			if cur, ok := app.aliases[r.Name]; !ok || r.Version > cur.Version {
				app.aliases[r.Name] = r
			}
		}
		if r.Name == n.ProductionRelease && r.Status == "deployed" && (app.live == nil || r.Version > app.live.Version) {
			app.live = &recs[i]
		}
	}
	return app
}

// previewNamespaces lists the namespaces of n's app's commits.
func (c *Configuration) previewNamespaces(ctx context.Context, n Names) ([]corev1.Namespace, error) {
	list, err := c.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{
		LabelSelector: fmt.Sprintf("%s=%s,%s=%s,%s=%s", LabelManagedBy, ManagedBy, LabelApp, n.AppPart, LabelRole, RolePreview),
	})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces of %s: %w", n.AppPart, err)
	}
	return list.Items, nil
}
