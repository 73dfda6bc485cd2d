//go:build e2e

package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// gitlabCILocal runs the example pipeline (examples/gitlab-ci.yml, the
// template included from this checkout instead of from a GitLab project)
// through a GitLab CI interpreter, gitlab-ci-local, against the real node:
// each job's script runs with gitlab-ci-local's shell executor (the job
// image is not used) and GitLab's predefined variables as it sets them
// (CI_COMMIT_*, CI_PROJECT_*, the dotenv reports between jobs); the
// cluster and registry come as CI/CD variables would. The steps: test,
// build, package, review (the branch alias's URL from the dotenv) →
// promote → a second commit → its review → promote → rollback →
// stop-review; each environment's URL is curled.
func gitlabCILocal(t *testing.T, c *cluster) {
	// The script knows where its install is, installs it when it is
	// missing or does not start, and prints its path.
	install := exec.Command("../hack/gitlab-ci-local.sh")
	var stderr bytes.Buffer
	install.Stderr = &stderr
	out, err := install.Output()
	if err != nil {
		t.Fatalf("installing gitlab-ci-local (hack/gitlab-ci-local.sh): %v\n%s", err, &stderr)
	}
	gcl := strings.TrimSpace(string(out))
	repo := t.TempDir()
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("../examples/hello/main.go", filepath.Join(repo, "main.go"))
	copyFile("../examples/hello/main_test.go", filepath.Join(repo, "main_test.go"))
	copyFile("../ci/shipper.gitlab-ci.yml", filepath.Join(repo, "ci/shipper.gitlab-ci.yml"))
	pipeline, err := os.ReadFile("../examples/gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The one change: the template comes from this checkout.
	include := regexp.MustCompile(`(?m)^include:\n(  .*\n)+`)
	if !include.Match(pipeline) {
		t.Fatal("examples/gitlab-ci.yml has no include: block to replace")
	}
	pipeline = include.ReplaceAll(pipeline, []byte("include:\n  - local: ci/shipper.gitlab-ci.yml\n"))
	files := map[string]string{
		".gitlab-ci.yml": string(pipeline),
		"go.mod":         "module hello\n\ngo 1.26\n",
		".gitignore":     "dist/\n.gitlab-ci-local/\n.gitlab-ci-local-variables.yml\n*.ref\n*.env\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com",
			"GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	// The project's path, which gitlab-ci-local reads from the remote as
	// GitLab sets it (CI_PROJECT_PATH_SLUG demo-gcl-hello names the app).
	git("remote", "add", "origin", "https://gitlab.example.com/demo/gcl-hello.git")
	git("add", "-A")
	git("commit", "-q", "-m", "hello")

	reg := c.env.Registry
	// KUBE_CA_PEM as a CI/CD variable of type File: its value is a path.
	caFile := filepath.Join(t.TempDir(), "KUBE_CA_PEM")
	if err := os.WriteFile(caFile, c.token.CAData, 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		// CI/CD variables of the project, as docs/getting-started.md's GitLab setup
		// says (the cluster as KUBE_URL, KUBE_TOKEN, KUBE_CA_PEM: no
		// kubeconfig); the rest is what gitlab-ci-local predefines.
		"KUBE_URL":                 c.token.Host,
		"KUBE_TOKEN":               c.token.BearerToken,
		"KUBE_CA_PEM":              caFile,
		"CI_REGISTRY_IMAGE":        reg.Repository("demo/gcl-hello"), // GitLab's own registry's, here the harness's
		"CI_REGISTRY_USER":         reg.Username,
		"CI_REGISTRY_PASSWORD":     reg.Password,
		"CI_DEPLOY_USER":           reg.Username,
		"CI_DEPLOY_PASSWORD":       reg.Password,
		"KUBE_INGRESS_BASE_DOMAIN": c.router.domain,
		"SHIPPER_INGRESS_CLASS":    testenv.IngressClass,
		"SHIPPER_URL_SCHEME":       "http",
		"SHIPPER_TIMEOUT":          "2m",
		// Previews protected, as the template sets them up: the gate runs
		// from the job image, which the harness built; the checks below
		// pass it with the bypass header, as a pipeline's test job does.
		"SHIPPER_JOB_IMAGE":         c.jobImage(t),
		"SHIPPER_PREVIEW_PASSWORD":  "gcl-preview-password-2468",
		"SHIPPER_PROTECTION_BYPASS": gclBypass,
	}
	c.bypass = gclBypass
	bin := filepath.Dir(c.shipper)
	// The variables go in gitlab-ci-local's variables file (mode 0600),
	// not its command line, where any local user's ps would see them.
	var yml strings.Builder
	for k, v := range vars {
		q, _ := json.Marshal(v) // a JSON string is a YAML string
		fmt.Fprintf(&yml, "%s: %s\n", k, q)
	}
	if err := os.WriteFile(filepath.Join(repo, ".gitlab-ci-local-variables.yml"), []byte(yml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(gcl, append([]string{"--force-shell-executor", "--no-color"}, args...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		start := time.Now()
		out, err := cmd.CombinedOutput()
		say(t, "\n$ gitlab-ci-local %s   # %v\n%s", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond), tail(string(out), 30))
		if err != nil {
			t.Fatalf("gitlab-ci-local %v: %v", args, err)
		}
	}
	dotenv := func(job, file, key string) string {
		t.Helper()
		// gitlab-ci-local's directory of a job: its name with each run of
		// other characters than [A-Za-z0-9_-] base64url-encoded.
		dir := regexp.MustCompile(`[^\w-]+`).ReplaceAllStringFunc(job, func(m string) string {
			return base64.RawURLEncoding.EncodeToString([]byte(m))
		})
		b, err := os.ReadFile(filepath.Join(repo, ".gitlab-ci-local", "artifacts", dir, ".gitlab-ci-reports", "dotenv", file))
		if err != nil {
			t.Fatalf("the dotenv report of %s: %v", job, err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, key+"="); ok {
				return v
			}
		}
		t.Fatalf("%s's %s has no %s: %s", job, file, key, b)
		return ""
	}
	host := func(url string) string { return strings.TrimPrefix(url, "http://") }

	// The first commit: the pipeline as a push runs it, then promote.
	first := git("rev-parse", "--short=8", "HEAD")
	run("--manual", "shipper:promote")
	review := dotenv("shipper:review", "deploy.env", "SHIPPER_ALIAS_URL")
	if want := "http://demo-gcl-hello--main." + c.router.domain; review != want {
		t.Errorf("review environment URL %q, want the branch alias %q", review, want)
	}
	c.eventually(t, host(review), "/version", 200, first)
	c.eventually(t, host(dotenv("shipper:review", "deploy.env", "SHIPPER_URL")), "/version", 200, first)
	prod := dotenv("shipper:promote", "production.env", "SHIPPER_URL")
	c.eventually(t, host(prod), "/version", 200, first)
	c.curl(t, host(prod), "/version")

	// A second commit: review moves the alias; promote; then roll back.
	if err := os.WriteFile(filepath.Join(repo, "CHANGES"), []byte("second\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "-A")
	git("commit", "-q", "-m", "second")
	second := git("rev-parse", "--short=8", "HEAD")
	run("--manual", "shipper:promote")
	c.eventually(t, host(review), "/version", 200, second)
	c.eventually(t, host(prod), "/version", 200, second)
	c.curl(t, host(prod), "/version")
	run("shipper:rollback")
	c.eventually(t, host(prod), "/version", 200, first)
	c.curl(t, host(prod), "/version")

	// The branch goes: its stop job takes the alias and the commit.
	run("shipper:stop-review")
	c.eventually(t, host(review), "/version", 404, "")
	c.eventually(t, "demo-gcl-hello-"+second+"."+c.router.domain, "/version", 404, "")
	c.eventually(t, host(prod), "/version", 200, first)
}

// gclBypass is the gitlab-ci-local pipeline's SHIPPER_PROTECTION_BYPASS.
const gclBypass = "gcl-automation-bypass-1357"

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
