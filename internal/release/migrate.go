package release

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Migrations (deploy --migrate, promote --migrate): the commit's image run
// once with a database's environment before anything serves from it.
//
//	deploy    the chart's hook Job "<release>-migrate" (templates/
//	          migrate.yaml, pre-install and pre-upgrade), envFrom the
//	          commit's env Secret (its DATABASE_URL): Helm runs it before it
//	          changes any of the release's objects, so a failed migration
//	          fails the install or upgrade with the previous revision still
//	          serving. The command is shipper's value (migrate:, written
//	          whole over whatever the values file says), never the user's.
//	promote   a Job shipper makes, "migrate-production" in the commit's
//	          namespace, with the pod of the commit's deployed Deployment
//	          (image, security contexts, resources, node constraints: what
//	          the cluster admitted already) and envFrom a Secret holding
//	          production's secret variables (its DATABASE_URL), under
//	          production's Lease and the commit's, after the switch's fresh
//	          checks and before the size-up (whose pods run on production's
//	          database): a failure switches nothing.
//
// Both Jobs have backoffLimit 0 (a migration runs once, not again on its
// own), activeDeadlineSeconds the operation's deadline (a killed job's
// migration does not run on for ever), restartPolicy Never. A Job left
// running by a killed job is deleted, and its pod waited for until gone,
// before the next run starts one, under the same locks: two runs of one
// migration never overlap; a delete of the commit stops it before it drops
// the database. A promote killed after its migration migrates again when
// run again (nothing records that one ran: the command is idempotent). A failure is a *MigrationError with the last
// log lines of the Job's pod, every secret value of the environment it
// ran with (and any URL's password) masked.

// migrateJobName is the chart's hook Job of commit n.
func migrateJobName(n Names) string { return n.Release + "-migrate" }

// productionMigrateJob is promote's Job, in the commit's namespace (a
// fixed name: "<release>-migrate-production" could pass a label value's
// 63 characters, which the Job's pods carry).
const productionMigrateJob = "migrate-production"

// productionMigrateSecretName holds production's secret variables for
// promote's Job, apart from the production Secret sizing writes (and puts
// back when a size-up fails).
func productionMigrateSecretName(n Names) string { return n.Release + "-env-production-migrate" }

// migrateContainer is the container of both Jobs whose logs a failure
// shows.
const migrateContainer = "migrate"

// defaultMigrateDeadline is the Job's deadline without one on the context.
const defaultMigrateDeadline = 300

// maxMigrateLen bounds --migrate.
const maxMigrateLen = 16 << 10

// MigrateArgv is the argv of a --migrate command: a JSON array of strings
// is run as it is (exec form, as a Dockerfile's CMD ["..."]: for an image
// without a shell), anything else by the image's /bin/sh -c (shell form).
// "" is no migration (nil). Its errors never quote the command.
func MigrateArgv(cmd string) ([]string, error) {
	if strings.TrimSpace(cmd) == "" {
		return nil, nil
	}
	bad := func(rule string) error { return &UsageError{Input: "--migrate", Value: NotShown, Rule: rule} }
	if len(cmd) > maxMigrateLen {
		return nil, bad(fmt.Sprintf("must be at most %d bytes", maxMigrateLen))
	}
	if strings.ContainsRune(cmd, 0) {
		return nil, bad("must not hold a NUL byte")
	}
	if t := strings.TrimSpace(cmd); strings.HasPrefix(t, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(t), &argv); err != nil || len(argv) == 0 || argv[0] == "" {
			return nil, bad(`a command starting with "[" must be a JSON array of strings, its first the program (exec form: ["/app/migrate", "up"]); else it is run by /bin/sh -c`)
		}
		if slices.ContainsFunc(argv, func(a string) bool { return strings.ContainsRune(a, 0) }) {
			return nil, bad("must not hold a NUL byte")
		}
		return argv, nil
	}
	return []string{"/bin/sh", "-c", cmd}, nil
}

// migrateValues are the chart's migrate: values for argv, the Job's
// deadline that of ctx (rounded up to a second).
func migrateValues(ctx context.Context, argv []string) map[string]any {
	cmd := make([]any, len(argv))
	for i, a := range argv {
		cmd[i] = a
	}
	deadline := defaultMigrateDeadline
	if len(argv) > 0 {
		deadline = migrateDeadline(ctx)
	}
	return map[string]any{"command": cmd, "activeDeadlineSeconds": deadline}
}

// migrateDeadline is what is left of ctx in whole seconds (at least 1).
func migrateDeadline(ctx context.Context) int {
	if dl, ok := ctx.Deadline(); ok {
		return max(1, int(math.Ceil(time.Until(dl).Seconds())))
	}
	return defaultMigrateDeadline
}

// withMigrate is the user's values with shipper's migrate: block for
// argv, whole: no key of the values file's is left in it. Without a
// migration the block is the chart's default (a chart of the user's may
// have none), never the values file's.
func withMigrate(ctx context.Context, user map[string]any, argv []string) map[string]any {
	out := make(map[string]any, len(user)+1)
	for k, v := range user {
		out[k] = v
	}
	delete(out, "migrate")
	if len(argv) > 0 {
		out["migrate"] = migrateValues(ctx, argv)
	}
	return out
}

// migrateArgv is d.Migrate's argv, refused for a chart without a
// migrate: block (a --chart of the user's), before anything changes.
func (d *Deploy) migrateArgv() ([]string, error) {
	argv, err := MigrateArgv(d.Migrate)
	if err != nil || argv == nil {
		return argv, err
	}
	ch, err := d.cfg.Chart()
	if err != nil {
		return nil, err
	}
	if _, ok := ch.Values["migrate"].(map[string]any); !ok {
		return nil, &UsageError{Input: "chart", Value: ch.Metadata.Name, Rule: "has no migrate: block in its values, so it cannot run --migrate (see charts/preview-app, templates/migrate.yaml): drop --migrate, or add it"}
	}
	return argv, nil
}

// MigrationError is a migration that did not succeed: nothing that would
// run on its database was changed. Logs are the last lines of the Job's
// pod, secrets masked.
type MigrationError struct {
	// Where is the database: "the commit's" or "production's".
	Where string
	// Namespace and Job name the Job; Pod its pod, when it had one.
	Namespace, Job, Pod string
	// Reason says why it failed: the Job's condition, the container's exit.
	Reason string
	Logs   []string
}

func (e *MigrationError) Error() string {
	s := fmt.Sprintf("the migration of %s database failed (job %s/%s", e.Where, e.Namespace, e.Job)
	if e.Pod != "" {
		s += ", pod " + e.Pod
	}
	s += "): " + e.Reason
	if len(e.Logs) > 0 {
		s += "; its last log lines:\n  " + strings.Join(e.Logs, "\n  ")
	}
	return s
}

// installMigrating is installOrUpgrade of commit n's plan p with its
// migration hook (deploy --migrate): a Job a killed deploy left running is
// stopped first (none in a release opened fresh), and a failure of the
// hook is a *MigrationError. The caller holds the commit's Lease.
func (d *Deploy) installMigrating(ctx context.Context, n Names, r *helmRelease, p *plan, carried map[string]any) (rel *release.Release, err error) {
	if !r.fresh {
		// Without --migrate a token without Job rights (manifests from
		// before migrations) still deploys: there is no Job to stop.
		err := d.cfg.stopJob(ctx, n.Namespace, migrateJobName(n), false)
		if err != nil && (d.Migrate != "" || !apierrors.IsForbidden(err)) {
			return nil, err
		}
	}
	if d.Migrate == "" {
		return d.cfg.installOrUpgrade(ctx, r, p, carried)
	}
	d.cfg.log.Info("migrating the commit's database before its pods roll out", "job", migrateJobName(n))
	start := time.Now()
	rel, err = d.cfg.installOrUpgrade(ctx, r, p, carried)
	if err == nil {
		return rel, nil
	}
	env, rerr := d.cfg.envSecretData(ctx, n)
	if rerr != nil {
		env = d.Secrets
	}
	if me := d.cfg.migrationFailure(ctx, n.Namespace, migrateJobName(n), "the commit's", d.cfg.secretsOf(env), start); me != nil {
		return rel, me
	}
	return rel, err
}

// publicDatabaseVars are the variables of a commit's database that hold
// no secret: where the server is and whose the database is (libpq's
// names, docs/database.md). A migration's log that names them stays
// readable; the password and DATABASE_URL are masked.
var publicDatabaseVars = []string{"PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE"}

// secretsOf are the values a failed migration's log must not show, from
// env, what the commit's env Secret holds: every K8S_SECRET_* variable's,
// and of the database's variables (WithDatabase) those that are secret.
// Without per-commit databases a variable named PGHOST is the user's own
// secret variable, masked as any other.
func (c *Configuration) secretsOf(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		if c.db != nil && slices.Contains(c.db.Vars(), k) && slices.Contains(publicDatabaseVars, k) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// stopJob deletes Job name in ns when it is still running (any: all, said
// only of one running) and waits until its pods are gone, so a run of the
// same migration never overlaps a killed job's. A finished Job is left for Helm's
// before-hook-creation (its logs readable until then).
func (c *Configuration) stopJob(ctx context.Context, ns, name string, all bool) error {
	jobs := c.client.BatchV1().Jobs(ns)
	j, err := jobs.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading job %s/%s: %w", ns, name, err)
	}
	done := jobFinished(j) != "" && j.DeletionTimestamp == nil
	if !all && done {
		return nil
	}
	if !done {
		c.log.Warn("stopping a migration a killed job left", "job", name, "namespace", ns)
	}
	err = jobs.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting job %s/%s: %w", ns, name, err)
	}
	for {
		_, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			pods, perr := c.jobPods(ctx, ns, name)
			if perr != nil {
				return perr
			}
			if !slices.ContainsFunc(pods, func(p corev1.Pod) bool {
				return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
			}) {
				return nil
			}
		} else if err != nil {
			return fmt.Errorf("reading job %s/%s: %w", ns, name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the pod of job %s/%s to end: %w", ns, name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stopMigrations stops the migrations of commit n that a killed deploy or
// promote left running, before its delete drops the database they run on
// (one list of n's Jobs, the common case finding none running). The
// caller holds n's Lease.
func (c *Configuration) stopMigrations(ctx context.Context, n Names) error {
	jobs, err := c.client.BatchV1().Jobs(n.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the jobs of %s: %w", n.Namespace, err)
	}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if (j.Name == migrateJobName(n) || j.Name == productionMigrateJob) && jobFinished(j) == "" {
			if err := c.stopJob(ctx, n.Namespace, j.Name, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// jobFinished is the reason of Job j's Complete or Failed condition, ""
// while it runs.
func jobFinished(j *batchv1.Job) string {
	for _, cond := range j.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobComplete:
			return "Complete"
		case batchv1.JobFailed:
			return "Failed: " + cond.Reason
		}
	}
	return ""
}

// jobPods are the pods of the Jobs named name in ns, newest first.
func (c *Configuration) jobPods(ctx context.Context, ns, name string) ([]corev1.Pod, error) {
	return c.podsOf(ctx, ns, batchv1.JobNameLabel+"="+name)
}

// podsOf are the pods of ns that selector selects, newest first.
func (c *Configuration) podsOf(ctx context.Context, ns, selector string) ([]corev1.Pod, error) {
	pods, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s in %s: %w", selector, ns, err)
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[j].CreationTimestamp.Before(&pods.Items[i].CreationTimestamp)
	})
	return pods.Items, nil
}

// migrationFailure reads why Job name in ns, made since, failed, with its
// pod's last log lines, secrets masked; nil when there is no such Job, or
// it succeeded (the error was not the migration's).
func (c *Configuration) migrationFailure(ctx context.Context, ns, name, where string, secrets []string, since time.Time) *MigrationError {
	ctx, cancel := undoContext(ctx)
	defer cancel()
	j, err := c.client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	// Creation times are whole seconds.
	if err != nil || j.CreationTimestamp.Time.Before(since.Truncate(time.Second)) || jobFinished(j) == "Complete" {
		return nil
	}
	e := &MigrationError{Where: where, Namespace: ns, Job: name, Reason: jobFinished(j)}
	if e.Reason == "" {
		e.Reason = "did not finish in time"
	}
	// This run's pods: a pod of an earlier Job of the name may linger.
	pods, err := c.podsOf(ctx, ns, batchv1.ControllerUidLabel+"="+string(j.UID))
	if err != nil || len(pods) == 0 {
		e.Reason += " (no pod)"
		return e
	}
	p := pods[0]
	e.Pod = p.Name
	ran := false
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name != migrateContainer {
			continue
		}
		switch {
		case cs.State.Terminated != nil:
			ran = true
			e.Reason += fmt.Sprintf(" (exit code %d)", cs.State.Terminated.ExitCode)
		case cs.State.Running != nil:
			ran = true
			e.Reason += " (still running when stopped)"
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			e.Reason += " (" + cs.State.Waiting.Reason + ")"
		}
	}
	if !ran {
		return e
	}
	b, err := c.client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: migrateContainer, TailLines: ptr.To[int64](migrateLogLines)}).DoRaw(ctx)
	if err != nil {
		first, _, _ := strings.Cut(err.Error(), "\n")
		e.Logs = []string{"(logs unavailable: " + first + ")"}
		return e
	}
	if s := strings.TrimRight(string(b), "\n"); s != "" {
		e.Logs = strings.Split(maskSecrets(s, secrets), "\n")
	}
	return e
}

// migrateLogLines is how many of the migration's last log lines an error
// shows.
const migrateLogLines = 20

// urlPassword is a URL's password: scheme://user:PASSWORD@.
var urlPassword = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@`)

// minSecretLen: shorter secret values (a K8S_SECRET_ flag "true") are
// not masked, as they would mask every such string of the log and tell
// little (GitLab masks no variable under 8 characters either).
const minSecretLen = 6

// maskSecrets replaces in s each of secrets (the secret values of the
// environment the migration ran with: secretsOf) and the password of any
// URL with "(secret)". A migration tool may print its DATABASE_URL; the
// error goes to the job's log.
func maskSecrets(s string, secrets []string) string {
	sorted := slices.Clone(secrets)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	for _, v := range sorted {
		if len(v) >= minSecretLen {
			s = strings.ReplaceAll(s, v, "(secret)")
		}
	}
	return urlPassword.ReplaceAllString(s, "${1}(secret)@")
}

// migrateProduction runs argv against production's database before the
// switch brings commit n in: a Job in n's namespace with the pod of its
// deployed Deployment, envFrom a Secret of production's secret variables,
// waited for until it succeeds. A failure is a *MigrationError and
// nothing is switched. The caller holds production's Lease and n's.
func (c *Configuration) migrateProduction(ctx context.Context, n Names, argv []string, secrets map[string]string) error {
	pod, err := c.migrationPod(ctx, n)
	if err != nil {
		return err
	}
	if err := c.stopJob(ctx, n.Namespace, productionMigrateJob, true); err != nil {
		return err
	}
	if err := c.stopProductionMigrations(ctx, n); err != nil {
		return err
	}
	secret := productionMigrateSecretName(n)
	if _, err := c.applyEnvSecretNamed(ctx, n, secret, secrets); err != nil {
		return err
	}
	defer func() {
		ctx, cancel := undoContext(ctx)
		defer cancel()
		if _, err := c.applyEnvSecretNamed(ctx, n, secret, nil); err != nil {
			c.log.Warn("could not remove the Secret of production's migration", "secret", secret, "error", err)
		}
	}()
	ct := &pod.Containers[0]
	ct.Command, ct.Args = argv, nil
	ct.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}
	labels := map[string]string{LabelManagedBy: ManagedBy, LabelApp: n.AppPart, LabelSHA: n.Short, "app.kubernetes.io/component": productionMigrateJob}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: productionMigrateJob, Namespace: n.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:          ptr.To[int32](0),
			ActiveDeadlineSeconds: ptr.To(int64(migrateDeadline(ctx))),
			Template:              corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: *pod},
		},
	}
	c.log.Info("migrating production's database before the switch", "job", productionMigrateJob, "namespace", n.Namespace)
	start := time.Now()
	if _, err := c.client.BatchV1().Jobs(n.Namespace).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating job %s/%s: %s", n.Namespace, productionMigrateJob, apierrors.ReasonForError(err))
	}
	werr := c.awaitJob(ctx, n.Namespace, productionMigrateJob)
	if werr == nil {
		c.log.Info("production's database migrated", "job", productionMigrateJob)
		return nil
	}
	if me := c.migrationFailure(ctx, n.Namespace, productionMigrateJob, "production's", slices.Collect(maps.Values(secrets)), start); me != nil {
		if errors.Is(werr, context.DeadlineExceeded) || errors.Is(werr, context.Canceled) {
			me.Reason = "did not finish in time: " + me.Reason
		}
		return me
	}
	return werr
}

// stopProductionMigrations stops the production migration a killed
// promote of another commit of n's app left running (its Job in that
// commit's namespace runs until its deadline): production's database is
// migrated by one Job at a time. Every production migration runs under
// production's Lease, which the caller holds: one still running is a
// killed job's.
func (c *Configuration) stopProductionMigrations(ctx context.Context, n Names) error {
	nss, err := c.previewNamespaces(ctx, n)
	if err != nil {
		return err
	}
	for i := range nss {
		ns := &nss[i]
		if ns.Name == n.Namespace || projectOf(ns).ID != c.project.ID {
			continue
		}
		if err := c.stopJob(ctx, ns.Name, productionMigrateJob, false); err != nil {
			return err
		}
	}
	return nil
}

// awaitJob waits until Job name in ns completes; its failure, or ctx's
// end, is an error.
func (c *Configuration) awaitJob(ctx context.Context, ns, name string) error {
	for {
		j, err := c.client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading job %s/%s: %w", ns, name, err)
		}
		switch r := jobFinished(j); {
		case r == "Complete":
			return nil
		case r != "":
			return errors.New(r)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// migrationPod is the pod production's migration runs: the app container
// of commit n's deployed Deployment (its image, env values, resources,
// security context, volumes) with the pod's security context, pull
// secrets and node constraints, which the cluster admitted already;
// without probes, ports or the commit's env Secret, restarted never.
func (c *Configuration) migrationPod(ctx context.Context, n Names) (*corev1.PodSpec, error) {
	d, err := c.client.AppsV1().Deployments(n.Namespace).Get(ctx, n.Release, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, &UsageError{Input: "commit", Value: n.Short, Rule: "has no Deployment " + n.Release + " to take production's migration's pod from (its chart renders none)"}
	}
	if err != nil {
		return nil, fmt.Errorf("reading deployment %s/%s: %w", n.Namespace, n.Release, err)
	}
	return migrationPodOf(d), nil
}

// migrationPodOf is migrationPod's pod from Deployment d.
func migrationPodOf(d *appsv1.Deployment) *corev1.PodSpec {
	src := d.Spec.Template.Spec
	i := slices.IndexFunc(src.Containers, func(ct corev1.Container) bool { return ct.Name == appContainer })
	if i < 0 {
		i = 0
	}
	app := src.Containers[i]
	ct := corev1.Container{
		Name: migrateContainer, Image: app.Image, ImagePullPolicy: app.ImagePullPolicy,
		Env: app.Env, Resources: app.Resources, SecurityContext: app.SecurityContext,
		VolumeMounts: app.VolumeMounts, WorkingDir: app.WorkingDir,
	}
	return &corev1.PodSpec{
		Containers: []corev1.Container{ct}, RestartPolicy: corev1.RestartPolicyNever,
		AutomountServiceAccountToken: ptr.To(false), EnableServiceLinks: ptr.To(false),
		SecurityContext: src.SecurityContext, ImagePullSecrets: src.ImagePullSecrets, Volumes: src.Volumes,
		NodeSelector: src.NodeSelector, Affinity: src.Affinity, Tolerations: src.Tolerations,
		PriorityClassName: src.PriorityClassName, RuntimeClassName: src.RuntimeClassName,
	}
}

// checkMigrate refuses, before anything is read: with per-commit
// databases (WithDatabase), production without a DATABASE_URL of its own
// (productiondb.go); --migrate that does not parse, or with no production
// secret variables to migrate with.
func (p *Promote) checkMigrate() error {
	prefix := cmp.Or(p.SecretPrefix, "K8S_SECRET_")
	if err := p.cfg.requireProductionDatabase(p.Secrets, prefix); err != nil {
		return err
	}
	argv, err := MigrateArgv(p.Migrate)
	if err != nil || argv == nil {
		return err
	}
	if len(p.Secrets) == 0 {
		return &UsageError{Input: "--migrate", Value: NotShown, Rule: "runs against production's database, which comes from production's secret variables: set " + prefix + productionDatabaseVar + " for the production environment"}
	}
	return nil
}

// migration is the switch's migrate step of a promote of n (nil without
// --migrate).
func (p *Promote) migration(n Names) func(context.Context) error {
	argv, _ := MigrateArgv(p.Migrate) // checked by validate
	if argv == nil {
		return nil
	}
	return func(ctx context.Context) error { return p.cfg.migrateProduction(ctx, n, argv, p.Secrets) }
}

// hookManifests are a rendering's hooks (the migration Job) as `helm
// template` prints them after the manifest: shipper render shows them,
// and checkWorkloads checks their pods.
func hookManifests(hooks []*release.Hook) string {
	var b strings.Builder
	for _, h := range hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return b.String()
}
