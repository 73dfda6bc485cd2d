package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// clearFlagEnv unsets every variable a flag of the app reads, so the
// machine's (a CI job's CI_* and KUBE_*) do not leak into a test.
func clearFlagEnv(t *testing.T) {
	t.Helper()
	app := newApp(nil, nil)
	all := append([]cli.Flag{}, app.Flags...)
	for _, c := range app.Commands {
		all = append(all, c.Flags...)
	}
	for _, f := range all {
		if d, ok := f.(cli.DocGenerationFlag); ok {
			for _, v := range d.GetEnvVars() {
				t.Setenv(v, "")
				os.Unsetenv(v)
			}
		}
	}
	for _, v := range []string{"SHIPPER_PREVIEW_HOST", "SHIPPER_PRODUCTION_HOST", "SOURCE_DATE_EPOCH", gatePasswordVar, gateBypassVar} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	// Protection has tests of its own (protect_test.go); the others run
	// without the gate's image and Secret.
	t.Setenv("SHIPPER_PROTECT", "none")
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"shipper"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// flagDef is what a flag means to its user: everything --help shows of
// it, and whether it shows at all.
type flagDef struct {
	Kind, Usage, Default, Env, Aliases string
	Hidden                             bool
}

func defOf(f cli.Flag) flagDef {
	d := flagDef{Kind: fmt.Sprintf("%T", f), Aliases: strings.Join(f.Names()[1:], ",")}
	if g, ok := f.(cli.DocGenerationFlag); ok {
		d.Usage, d.Default, d.Env = g.GetUsage(), g.GetValue(), strings.Join(g.GetEnvVars(), ",")
	}
	if v, ok := f.(cli.VisibleFlag); ok {
		d.Hidden = !v.IsVisible()
	}
	return d
}

// sameFlagExceptions are the only differences between two definitions of
// one flag name, each for a reason a user can read in --help.
var sameFlagExceptions = map[string]struct {
	commands []string // whose definition may differ
	fields   []string // in these fields
	why      string
}{
	"host": {[]string{"deploy", "promote", "rollback", "render"}, []string{"Usage", "Env"},
		"each command's own host: deploy's preview host (SHIPPER_PREVIEW_HOST), promote's and rollback's production host (SHIPPER_PRODUCTION_HOST), render's the one of its mode"},
	"sha": {[]string{"status"}, []string{"Env"},
		"status reads no variable: in a job CI_COMMIT_SHORT_SHA would always turn it into the pipeline commit's status"},
}

// TestSameFlagSameDefinition: a flag that several commands (or the app
// and its commands) define is one flag: the same type, usage, default,
// variables, aliases and visibility everywhere, but for the documented
// exceptions.
func TestSameFlagSameDefinition(t *testing.T) {
	app := newApp(nil, nil)
	type owner struct {
		cmd string
		def flagDef
	}
	byName := map[string][]owner{}
	for _, f := range app.Flags {
		byName[f.Names()[0]] = append(byName[f.Names()[0]], owner{"shipper", defOf(f)})
	}
	for _, c := range app.Commands {
		for _, f := range c.Flags {
			byName[f.Names()[0]] = append(byName[f.Names()[0]], owner{c.Name, defOf(f)})
		}
	}
	for name, owners := range byName {
		ex := sameFlagExceptions[name]
		var ref *owner
		for i := range owners {
			if !slices.Contains(ex.commands, owners[i].cmd) {
				ref = &owners[i]
				break
			}
		}
		if ref == nil {
			ref = &owners[0]
		}
		for _, o := range owners {
			got, want := o.def, ref.def
			if slices.Contains(ex.commands, o.cmd) {
				for _, field := range ex.fields {
					switch field {
					case "Usage":
						got.Usage, want.Usage = "", ""
					case "Env":
						got.Env, want.Env = "", ""
					}
				}
			}
			if got != want {
				t.Errorf("--%s of %s differs from %s's:\n got %+v\nwant %+v", name, o.cmd, ref.cmd, o.def, ref.def)
			}
		}
	}
}

// TestSiblingsTakeTheSameFlags pins the audit: each flag below is taken by
// every command listed, because each of them can use it (a shared job
// script or variable then works for all of them).
func TestSiblingsTakeTheSameFlags(t *testing.T) {
	app := newApp(nil, nil)
	for flag, cmds := range map[string][]string{
		"sha":           {"package", "deploy", "promote", "delete", "status", "render"},
		"full-sha":      {"package", "deploy", "promote", "delete", "render"},
		"image":         {"package", "deploy", "render"},
		"repository":    {"package", "deploy", "render"},
		"commit-time":   {"package", "deploy"},
		"env":           {"package", "deploy", "render"},
		"domain":        {"deploy", "promote", "rollback", "render"},
		"url-scheme":    {"deploy", "promote", "rollback", "render"},
		"host":          {"deploy", "promote", "rollback", "render"},
		"values":        {"deploy", "promote", "render"},
		"set":           {"deploy", "promote", "render"},
		"chart":         {"deploy", "promote", "render"},
		"ingress-class": {"deploy", "promote", "render"},
		"secret-prefix": {"deploy", "promote", "rollback", "render"},
		"pull-user":     {"deploy", "render"},
		"weight":        {"promote", "render"},
		"dotenv":        {"deploy", "promote", "rollback"},
		"wait":          {"deploy", "promote", "rollback"},
		"verify":        {"deploy", "promote", "rollback"},
		"drain-delay":   {"promote", "rollback"},
		"ref":           {"deploy", "delete"},
		"database-url":  {"deploy", "delete", "prune", "status", "render"},
		"registry-user": {"package", "deploy"},
		"verbose":       {"package", "deploy", "promote", "rollback", "delete", "prune", "list", "status", "render"},
		"output":        {"deploy", "promote", "rollback", "delete", "prune", "list", "status", "render", "version"},
		"timeout":       {"deploy", "promote", "rollback", "delete", "prune", "list", "status", "render"},
	} {
		for _, name := range cmds {
			c := app.Command(name)
			if c == nil {
				t.Fatalf("no command %s", name)
			}
			if !slices.ContainsFunc(c.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), flag) }) {
				t.Errorf("shipper %s does not take --%s", name, flag)
			}
		}
	}
}

// TestRollbackTakesPromotesHostFlags: a rollback job with promote's
// --domain (or --host, --url-scheme, --dotenv) runs; their values are
// checked as promote checks them, before any request.
func TestRollbackTakesPromotesHostFlags(t *testing.T) {
	clearFlagEnv(t)
	base := []string{"rollback", "--app", "a", "--kube-url", "https://127.0.0.1:1", "--timeout", "1s"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		// Taken, checked, and on to the (unreachable) cluster.
		{"--domain", []string{"--domain", "example.com"}, exitUnreachable, "connection refused"},
		{"--host", []string{"--host", "www.example.com"}, exitUnreachable, "connection refused"},
		{"--url-scheme and --dotenv", []string{"--domain", "example.com", "--url-scheme", "http", "--dotenv", filepath.Join(t.TempDir(), "rollback.env")}, exitUnreachable, "connection refused"},
		{"a bad --domain", []string{"--domain", "bad_domain!"}, exitUsage, `invalid domain "bad_domain!"`},
		{"a bad --host", []string{"--host", "{app}.bad_domain!"}, exitUsage, "production host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(base, tc.args...)...)
			if code != tc.code || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr containing %q", code, stdout, stderr, tc.code, tc.want)
			}
		})
	}
}

// TestRenderRefusesWhatDeployWouldNotCreate: deploy refuses a 7-character
// SHA unless it names a deployed commit (whose release is named by its
// first 8 characters); render, without a cluster to look it up, refuses
// it too instead of printing a release "<app>-<7 characters>" no deploy
// makes. The full SHA that extends it is fine.
func TestRenderRefusesWhatDeployWouldNotCreate(t *testing.T) {
	clearFlagEnv(t)
	base := []string{"render", "--app", "x", "--domain", "example.com", "--image", "r.example.com/a:1"}
	for _, mode := range [][]string{nil, {"--production"}} {
		code, stdout, stderr := runCLI(t, append(append(base, mode...), "--sha", "1234567")...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "at least 8 characters") {
			t.Errorf("render %v --sha 1234567: exit %d, stdout %q, stderr %q; want exit 2 asking for 8 characters", mode, code, stdout, stderr)
		}
	}
	full := "1234567" + strings.Repeat("a", 33)
	code, stdout, stderr := runCLI(t, append(base, "--sha", "1234567", "--full-sha", full)...)
	if code != exitOK || !strings.Contains(stdout, "name: x-1234567a\n") {
		t.Errorf("render --sha 1234567 --full-sha %s: exit %d, stderr %q; want the release x-1234567a:\n%s", full, code, stderr, stdout)
	}
}

// TestImageMeansTheSameEverywhere: --image and --repository name the
// commit's image alike on package, deploy and render; a bare repository
// is tagged with the short SHA, as package has always pushed it.
func TestImageMeansTheSameEverywhere(t *testing.T) {
	clearFlagEnv(t)
	render := []string{"render", "--app", "x", "--domain", "example.com", "--sha", "12345678"}
	for _, flag := range []string{"--image", "--repository"} {
		code, stdout, stderr := runCLI(t, append(render, flag, "r.example.com/g/x")...)
		if code != exitOK || !strings.Contains(stdout, `image: "r.example.com/g/x:12345678"`) {
			t.Errorf("render %s r.example.com/g/x: exit %d, stderr %q; want the image r.example.com/g/x:12345678", flag, code, stderr)
		}
	}
	unreachable := []string{"--kube-url", "https://127.0.0.1:1", "--timeout", "1s"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"package of a 7-character SHA", []string{"package", "--repository", "127.0.0.1:1/x", "--sha", "1234567"}, "at least 8 characters"},
		{"package to a digest", []string{"package", "--image", "127.0.0.1:1/x@sha256:" + strings.Repeat("0", 64), "--sha", "12345678"}, "package pushes a tag"},
		{"a repository with a tag", []string{"package", "--repository", "127.0.0.1:1/x:v1", "--sha", "12345678"}, "--repository"},
		{"deploy of a 7-character SHA tagging the image", append([]string{"deploy", "--app", "x", "--domain", "example.com", "--repository", "127.0.0.1:1/x", "--sha", "1234567"}, unreachable...), "the first 8 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, stdout, stderr, tc.want)
			}
		})
	}
}

// TestRenderTakesWhatDeployAndPromoteTake: --env, --weight and --output
// mean on render what they mean on deploy, promote and every command.
func TestRenderTakesWhatDeployAndPromoteTake(t *testing.T) {
	clearFlagEnv(t)
	render := []string{"render", "--app", "x", "--domain", "example.com", "--sha", "12345678", "--image", "r.example.com/x:1"}
	code, stdout, stderr := runCLI(t, append(render, "--env", "LOG_LEVEL=debug")...)
	if code != exitOK || !strings.Contains(stdout, "- name: \"LOG_LEVEL\"\n              value: \"debug\"") {
		t.Errorf("render --env LOG_LEVEL=debug: exit %d, stderr %q; want the variable in the Deployment", code, stderr)
	}
	code, _, stderr = runCLI(t, append(render, "--production", "--weight", "10")...)
	if code != exitUsage || !strings.Contains(stderr, "a canary step is rendered by the cluster only") {
		t.Errorf("render --production --weight 10: exit %d, stderr %q; want exit 2, a canary needs the live commit", code, stderr)
	}
	if code, _, stderr = runCLI(t, append(render, "--production", "--weight", "100")...); code != exitOK {
		t.Errorf("render --production --weight 100 (a full promote): exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr = runCLI(t, append(render, "-o", "json")...)
	var got struct{ Manifest string }
	if err := json.Unmarshal([]byte(stdout), &got); code != exitOK || err != nil || !strings.Contains(got.Manifest, "kind: Deployment") {
		t.Errorf("render -o json: exit %d, stderr %q, %v; want {\"manifest\": ...}:\n%.300s", code, stderr, err, stdout)
	}
}
