package release

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Project is the GitLab project on whose behalf shipper runs
// (CI_PROJECT_ID, CI_PROJECT_PATH). shipper writes its ID on every
// namespace and release record it creates, and refuses to touch an app
// whose namespaces carry another project's ID: two projects that pick the
// same app name (group-a/api and group-b/api both called "api") cannot
// promote, roll back or delete each other's commits. The zero Project is
// local use: it owns only apps made without a project.
type Project struct {
	// ID is the project's numeric ID: what ownership compares.
	ID string
	// Path, like group/api, only names the owner in messages.
	Path string
}

// WithProject sets the project the Configuration acts for.
func WithProject(p Project) Option { return func(c *Configuration) { c.project = p } }

// Labels and annotations of ownership.
const (
	LabelProject          = "shipper.dev/project-id"
	AnnotationProjectPath = "shipper.dev/project-path"
)

func (p Project) validate() error {
	if p.ID != "" && strings.Trim(p.ID, "0123456789") != "" || len(p.ID) > 20 {
		return &UsageError{Input: "project ID", Value: p.ID, Rule: "must be the numeric GitLab project ID (CI_PROJECT_ID)"}
	}
	if p.ID == "" && p.Path != "" {
		return &UsageError{Input: "project ID", Value: "", Rule: fmt.Sprintf("is empty while the project path is %q: set --project-id (GitLab sets CI_PROJECT_ID)", p.Path)}
	}
	return nil
}

func (p Project) String() string {
	switch {
	case p.ID == "":
		return "no project (local use)"
	case p.Path == "":
		return "project " + p.ID
	}
	return fmt.Sprintf("project %s (id %s)", p.Path, p.ID)
}

// projectOf reads the owner a namespace records.
func projectOf(ns *corev1.Namespace) Project {
	return Project{ID: ns.Labels[LabelProject], Path: ns.Annotations[AnnotationProjectPath]}
}

// errForeign refuses an app owned by another project. The fix it names
// depends on who asks: a job of another project picked a name that is
// taken, while someone at a terminal with no project (an operator with an
// admin kubeconfig) acts for the owner by naming it.
func (c *Configuration) errForeign(n Names, owner Project) error {
	fix := "choose another app name with --app (SHIPPER_APP)"
	if c.project.ID == "" && owner.ID != "" {
		fix = fmt.Sprintf("to act for that project, pass --project-id %s (SHIPPER_PROJECT_ID); reading (list, status) needs none", owner.ID)
	}
	return &UsageError{Input: "app", Value: n.AppPart, Rule: fmt.Sprintf(
		"belongs to %s, and this command runs for %s: %s", owner, c.project, fix)}
}

// requireOwnApp refuses an app that any namespace marks as another
// project's. The label selector asks the apiserver for exactly those
// namespaces, from its watch cache: the answer is almost always empty and
// costs one request whatever the number of namespaces. Checks of single
// namespaces (owned) repeat it where an operation writes.
func (c *Configuration) requireOwnApp(ctx context.Context, n Names) error {
	// The token's check (a SelfSubjectReview) and the list are sent at
	// once: two reads, and the token's answer still comes first.
	token := make(chan error, 1)
	go func() { token <- c.requireOwnToken(ctx) }()
	sel := fmt.Sprintf("%s=%s,%s=%s,", LabelManagedBy, ManagedBy, LabelApp, n.AppPart)
	if c.project.ID == "" {
		sel += LabelProject
	} else {
		sel += LabelProject + "!=" + c.project.ID
	}
	list, err := c.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: "0", Limit: 1})
	if terr := <-token; terr != nil {
		return terr
	}
	if err != nil {
		return fmt.Errorf("checking who owns app %s: %w", n.AppPart, err)
	}
	if len(list.Items) > 0 {
		return c.errForeign(n, projectOf(&list.Items[0]))
	}
	return nil
}

// owned reports, as a usage error, a namespace that shipper did not create
// for n's app and this Configuration's project.
func (c *Configuration) owned(ns *corev1.Namespace, n Names) error {
	if ns.Labels[LabelManagedBy] != ManagedBy || ns.Labels[LabelApp] != n.AppPart {
		return &UsageError{Input: "app", Value: n.AppPart, Rule: fmt.Sprintf(
			"namespace %q exists but was not created by shipper for this app (labels %s=%q, %s=%q): refusing to touch it; choose another app name with --app",
			ns.Name, LabelManagedBy, ns.Labels[LabelManagedBy], LabelApp, ns.Labels[LabelApp])}
	}
	if owner := projectOf(ns); owner.ID != c.project.ID {
		return c.errForeign(n, owner)
	}
	return nil
}

// An access is what an operation does to an app: the ownership check
// depends on it.
type access bool

const (
	// writing changes the app: only its owner may (requireOwnApp).
	writing access = false
	// reading only reads it (list, status). A job of a project reads only
	// its own apps, as it writes only them (the same name in two projects
	// is two apps); with no project (an operator at a terminal) any app the
	// credentials can read is read, and the apiserver's RBAC decides.
	reading access = true
)

// beginApp is the first step of every operation on n's app: valid names, a
// cluster, and an app this project owns. Nothing is written before it.
// alongside, when given, is called once n is valid and the cluster
// configured, before the ownership checks are sent: reads the operation
// sends early, with them (early.go).
func (c *Configuration) beginApp(ctx context.Context, n Names, alongside ...func()) error {
	return c.begin(ctx, n, writing, alongside...)
}

// beginRead is beginApp for an operation that only reads the app.
func (c *Configuration) beginRead(ctx context.Context, n Names) error {
	return c.begin(ctx, n, reading)
}

func (c *Configuration) begin(ctx context.Context, n Names, a access, alongside ...func()) error {
	if err := n.check(false); err != nil {
		return err
	}
	if err := c.online(); err != nil {
		return err
	}
	for _, f := range alongside {
		f()
	}
	if a == reading && c.project.ID == "" {
		return c.requireOwnToken(ctx)
	}
	return c.requireOwnApp(ctx, n)
}

// beginCommit is beginApp for an operation on commit n, which it resolves
// (resolveCommit): the Names it returns name the one release of that
// commit. The commit's namespace is read with the ownership checks, and
// alongside is called then too (beginApp).
func (c *Configuration) beginCommit(ctx context.Context, n Names, a access, alongside ...func()) (Names, bool, error) {
	if err := n.check(true); err != nil {
		return n, false, err
	}
	var ns *early[*corev1.Namespace]
	if len(n.SHA) >= shortSHALen {
		alongside = append(alongside, func() {
			ns = readEarly(func() (*corev1.Namespace, error) {
				return c.client.CoreV1().Namespaces().Get(ctx, n.Namespace, metav1.GetOptions{})
			})
		})
	}
	if err := c.begin(ctx, n, a, alongside...); err != nil {
		return n, false, err
	}
	return c.resolveCommit(ctx, n, ns)
}
