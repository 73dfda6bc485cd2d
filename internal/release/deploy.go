package release

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// maxHistory bounds the revisions Helm keeps per release: enough to roll
// production back through its recent promotions.
const maxHistory = 20

// PullSecretName is the image pull secret Deploy keeps in each preview
// namespace when registry credentials are given.
const PullSecretName = "shipper-pull"

// RegistryCredentials let the cluster pull a commit's image: GitLab's
// deploy token (CI_DEPLOY_USER/CI_DEPLOY_PASSWORD), never the job token.
type RegistryCredentials struct {
	Username, Password string
}

// Deploy installs one commit as its own release "<app>-<sha>" in its own
// namespace, or upgrades it when it exists, so re-running a CI job
// converges. It is Helm's `upgrade --install --create-namespace --wait`
// with the decision, pending-release repair and locking made here, not in
// the CLI.
type Deploy struct {
	cfg *Configuration

	Hosts Hosts
	// Values are the user's chart values; shipper's own win over them.
	Values map[string]any
	// Credentials, when set, become the namespace's image pull secret.
	Credentials *RegistryCredentials
	// Wait blocks until the Deployment is available.
	Wait    bool
	Timeout time.Duration
}

// NewDeploy returns a Deploy that waits up to five minutes.
func NewDeploy(cfg *Configuration) *Deploy {
	return &Deploy{cfg: cfg, Wait: true, Timeout: 5 * time.Minute}
}

// Commit is one deployed commit of an app, as Deploy, List and Status
// report it.
type Commit struct {
	App       string    `json:"app"`
	SHA       string    `json:"sha"`
	Short     string    `json:"short"`
	Release   string    `json:"release"`
	Namespace string    `json:"namespace"`
	Host      string    `json:"host"`
	URL       string    `json:"url"`
	Image     string    `json:"image,omitempty"`
	Revision  int       `json:"revision"`
	Status    string    `json:"status"`
	Updated   time.Time `json:"updated"`
	Live      bool      `json:"live"`
}

// Run deploys commit sha of app running image ("repo:tag" or
// "repo@sha256:..."). Bad input returns a *UsageError before anything in
// the cluster changes.
func (d *Deploy) Run(ctx context.Context, app, sha, image string) (*Commit, error) {
	n, err := NewNames(app, sha)
	if err != nil {
		return nil, err
	}
	img, err := ParseImage(image)
	if err != nil {
		return nil, err
	}
	host, err := d.Hosts.Preview(n)
	if err != nil {
		return nil, err
	}
	ch, err := d.cfg.Chart()
	if err != nil {
		return nil, err
	}
	secret := ""
	if d.Credentials != nil {
		secret = PullSecretName
	}
	url := d.Hosts.url(host)
	vals := mergeValues(d.Values, previewValues(n, host, url, img, secret))
	if err := validateValues(ch, vals); err != nil {
		return nil, err
	}

	err = d.cfg.ensureNamespace(ctx, n.Namespace, n.AppPart, RolePreview,
		map[string]string{LabelSHA: n.Short},
		map[string]string{AnnotationURL: url, AnnotationSHA: n.SHA})
	if err != nil {
		return nil, err
	}
	var rel *release.Release
	err = d.cfg.withLock(ctx, n.Namespace, n.Release, func(ctx context.Context) error {
		if d.Credentials != nil {
			if err := d.cfg.applyPullSecret(ctx, n.Namespace, img.Repository, *d.Credentials); err != nil {
				return err
			}
		}
		rel, err = d.cfg.installOrUpgrade(ctx, n.Namespace, n.Release, ch, vals, releaseLabels(n))
		if err != nil {
			return err
		}
		if !d.Wait {
			return nil
		}
		if err := d.cfg.waitAvailable(ctx, n.Namespace, n.Release, d.Timeout); err != nil {
			return d.cfg.markFailed(n.Namespace, rel, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deploying %s: %w", n.Release, err)
	}
	d.cfg.log.Info("deployed", "release", n.Release, "revision", rel.Version, "url", url)
	return &Commit{
		App: n.AppPart, SHA: n.SHA, Short: n.Short, Release: n.Release, Namespace: n.Namespace,
		Host: host, URL: url, Image: img.String(), Revision: rel.Version,
		Status: rel.Info.Status.String(), Updated: rel.Info.LastDeployed.Time,
	}, nil
}

// validateValues checks vals against the chart's schema before anything
// is created, so bad values change nothing in the cluster.
func validateValues(ch *chart.Chart, vals map[string]any) error {
	merged, err := chartutil.CoalesceValues(ch, vals)
	if err != nil {
		return &UsageError{Input: "values", Value: err.Error(), Rule: "must be a YAML map"}
	}
	if err := chartutil.ValidateAgainstSchema(ch, merged); err != nil {
		return valuesError(fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%w", err))
	}
	return nil
}

// installOrUpgrade is `helm upgrade --install` for a release whose lock the
// caller holds: a release left pending by a killed process is repaired
// first, then the release is installed when it has no record, upgraded
// otherwise (Helm upgrades a release whose only revisions failed, too).
func (c *Configuration) installOrUpgrade(ctx context.Context, ns, name string, ch *chart.Chart, vals map[string]any, labels map[string]string) (*release.Release, error) {
	cfg, err := c.helm(ns)
	if err != nil {
		return nil, err
	}
	last, err := c.repairPending(cfg, name)
	if err != nil {
		return nil, err
	}
	// The values were checked against the chart's schema by validateValues
	// before anything changed, so Helm need not do it again; and the
	// apiserver validates every object it is sent, so Helm's client-side
	// OpenAPI validation (which downloads and parses the OpenAPI documents
	// on every run, about half of a deploy's time) is skipped.
	if last == nil {
		c.log.Info("installing", "release", name, "namespace", ns)
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.Labels = name, ns, labels
		in.SkipSchemaValidation, in.DisableOpenAPIValidation = true, true
		in.Timeout = time.Minute
		rel, err := in.RunWithContext(ctx, ch, vals)
		return rel, valuesError(err)
	}
	c.log.Info("upgrading", "release", name, "namespace", ns, "from", last.Version)
	up := action.NewUpgrade(cfg)
	up.Namespace, up.Labels = ns, labels
	up.SkipSchemaValidation, up.DisableOpenAPIValidation = true, true
	up.MaxHistory = maxHistory
	up.Timeout = time.Minute
	rel, err := up.RunWithContext(ctx, name, ch, vals)
	return rel, valuesError(err)
}

// markFailed records that rel did not become available, so that `helm
// list` tells the truth and the next deploy of the same commit upgrades
// (repairs) it. It returns cause.
func (c *Configuration) markFailed(ns string, rel *release.Release, cause error) error {
	cfg, err := c.helm(ns)
	if err != nil {
		return cause
	}
	rel.SetStatus(release.StatusFailed, firstLine(cause.Error()))
	if err := cfg.Releases.Update(rel); err != nil {
		c.log.Warn("could not mark the release failed", "release", rel.Name, "error", err)
	}
	return cause
}

// applyPullSecret creates or updates the kubernetes.io/dockerconfigjson
// Secret that lets the namespace's pods pull from the image's registry.
func (c *Configuration) applyPullSecret(ctx context.Context, ns, repository string, cred RegistryCredentials) error {
	server := registryHost(repository)
	auth := base64.StdEncoding.EncodeToString([]byte(cred.Username + ":" + cred.Password))
	cfgJSON, err := json.Marshal(map[string]any{"auths": map[string]any{
		server: map[string]string{"username": cred.Username, "password": cred.Password, "auth": auth},
	}})
	if err != nil {
		return err
	}
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: PullSecretName, Namespace: ns, Labels: map[string]string{LabelManagedBy: ManagedBy}},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfgJSON},
	}
	secrets := c.client.CoreV1().Secrets(ns)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, err := secrets.Get(ctx, PullSecretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = secrets.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		got.Type, got.Data = want.Type, want.Data
		_, err = secrets.Update(ctx, got, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		// The error names the secret, never its content.
		return fmt.Errorf("writing image pull secret %s/%s: %w", ns, PullSecretName, err)
	}
	return nil
}

// registryHost is the registry part of an image repository, as Docker
// names it: the first path element when it looks like a host.
func registryHost(repository string) string {
	first, _, found := strings.Cut(repository, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}
