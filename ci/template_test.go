// Package ci_test checks the GitLab CI template's wiring: GitLab itself
// does not run here, so this test reads the YAML as GitLab would resolve it.
package ci_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

type job struct {
	Extends     string            `json:"extends"`
	Stage       string            `json:"stage"`
	Needs       []any             `json:"needs"`
	Script      []string          `json:"script"`
	When        string            `json:"when"`
	Variables   map[string]string `json:"variables"`
	Environment *struct {
		Name   string `json:"name"`
		URL    string `json:"url"`
		OnStop string `json:"on_stop"`
		Action string `json:"action"`
	} `json:"environment"`
	Artifacts *struct {
		Paths   []string `json:"paths"`
		Reports struct {
			Dotenv string `json:"dotenv"`
		} `json:"reports"`
	} `json:"artifacts"`
}

func load(t *testing.T, path string) map[string]job {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	jobs := map[string]job{}
	for name, v := range raw {
		if _, ok := v.(map[string]any); !ok || name == "variables" || name == "include" {
			continue
		}
		jb, _ := yaml.Marshal(v)
		var j job // keys this test does not model (rules, image...) are ignored
		if err := yaml.Unmarshal(jb, &j); err != nil {
			t.Fatalf("%s: job %s: %v", path, name, err)
		}
		jobs[name] = j
	}
	return jobs
}

func TestTemplateWiring(t *testing.T) {
	jobs := load(t, "shipper.gitlab-ci.yml")
	stages := map[string]bool{"build": true, "review": true, "production": true}
	commands := regexp.MustCompile(`^shipper (package|deploy|promote|rollback|delete|prune)\b`)
	seen := map[string]bool{}
	for name, j := range jobs {
		if strings.HasPrefix(name, ".") {
			continue
		}
		if name == "shipper:branches" {
			// The one job that is not shipper's: git lists the branches.
			if len(j.Script) != 1 || j.Script[0] != "git ls-remote --heads origin > branches.txt" || j.Artifacts == nil || len(j.Artifacts.Paths) != 1 {
				t.Errorf("%s: %v, want git ls-remote into the artifact branches.txt", name, j.Script)
			}
			continue
		}
		if j.Extends != ".shipper" || !stages[j.Stage] {
			t.Errorf("%s: extends %q stage %q, want .shipper and one of build/review/production", name, j.Extends, j.Stage)
		}
		for _, n := range j.Needs {
			if s, _ := n.(string); jobs[s].Stage == "" {
				t.Errorf("%s needs %v, which is not a job of the template", name, n)
			}
		}
		for _, s := range j.Script {
			m := commands.FindStringSubmatch(s)
			if m == nil {
				t.Errorf("%s: script line %q is not a shipper command", name, s)
				continue
			}
			seen[m[1]] = true
			if f := regexp.MustCompile(`--dotenv (\S+)`).FindStringSubmatch(s); f != nil {
				if j.Artifacts == nil || j.Artifacts.Reports.Dotenv != f[1] {
					t.Errorf("%s writes %s but does not report it as dotenv", name, f[1])
				}
				if j.Environment == nil || j.Environment.URL != "$SHIPPER_URL" && j.Environment.URL != "$SHIPPER_ALIAS_URL" {
					t.Errorf("%s: the environment URL must come from the dotenv (SHIPPER_URL or SHIPPER_ALIAS_URL)", name)
				}
			}
		}
		if e := j.Environment; e != nil && e.OnStop != "" {
			stop, ok := jobs[e.OnStop]
			if !ok || stop.Environment == nil || stop.Environment.Action != "stop" || stop.Environment.Name != e.Name || stop.When != "manual" {
				t.Errorf("%s: on_stop %q must be a manual job stopping environment %q", name, e.OnStop, e.Name)
			}
		}
	}
	for _, c := range []string{"package", "deploy", "promote", "rollback", "delete", "prune"} {
		if !seen[c] {
			t.Errorf("no job runs shipper %s", c)
		}
	}
	// A review environment per branch, at the branch alias's URL, whose
	// stop job takes the alias.
	if e := jobs["shipper:review"].Environment; e == nil || e.Name != "review/$CI_COMMIT_REF_SLUG" || e.URL != "$SHIPPER_ALIAS_URL" {
		t.Errorf("review environment %+v, want review/$CI_COMMIT_REF_SLUG at $SHIPPER_ALIAS_URL", e)
	}
	if j := jobs["shipper:stop-review"]; len(j.Script) != 1 || !strings.Contains(j.Script[0], "--with-alias") {
		t.Errorf("shipper:stop-review must delete the alias with the commit: %v", j.Script)
	}
	if j := jobs["shipper:prune"]; len(j.Script) != 1 || !strings.Contains(j.Script[0], "--branch-exists-file branches.txt") || j.Variables["SHIPPER_PRUNE_KEEP"] == "" {
		t.Errorf("shipper:prune must prune by the branches shipper:branches lists, with a keep policy: %+v", j)
	}
	for _, name := range []string{"shipper:promote", "shipper:canary", "shipper:rollback"} {
		if j := jobs[name]; j.When != "manual" || j.Environment == nil || j.Environment.Name != "production" {
			t.Errorf("%s must be a manual job of environment production: %+v", name, j)
		}
	}
	if j := jobs["shipper:canary"]; len(j.Script) != 1 || !strings.Contains(j.Script[0], "--weight") {
		t.Errorf("shipper:canary must promote with a weight: %v", j.Script)
	}
}

func TestExampleUsesTheTemplate(t *testing.T) {
	b, err := os.ReadFile("../examples/gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Stages  []string         `json:"stages"`
		Include []map[string]any `json:"include"`
	}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Include) != 1 || raw.Include[0]["file"] != "ci/shipper.gitlab-ci.yml" {
		t.Errorf("include = %v, want ci/shipper.gitlab-ci.yml", raw.Include)
	}
	have := map[string]bool{}
	for _, s := range raw.Stages {
		have[s] = true
	}
	for _, s := range []string{"build", "review", "production"} {
		if !have[s] {
			t.Errorf("stages %v lack %s, which the template's jobs use", raw.Stages, s)
		}
	}
}
