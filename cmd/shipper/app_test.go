package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"

	"k8s.io/klog/v2"

	"github.com/shipper-dev/shipper/internal/image"
	"github.com/shipper-dev/shipper/internal/kube"
	"github.com/shipper-dev/shipper/internal/release"
)

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // prefix
		wantStderr string // substring
	}{
		{"version", []string{"version"}, exitOK, "shipper dev (commit unknown, go", ""},
		{"version with an argument", []string{"version", "extra"}, exitUsage, "", `shipper: version takes no arguments, got "extra"`},
		{"unknown flag", []string{"version", "--nope"}, exitUsage, "", "shipper: flag provided but not defined: -nope"},
		{"unknown command", []string{"bogus"}, exitUsage, "", `shipper: unknown command "bogus": run 'shipper --help' for the list`},
		{"no command shows help", nil, exitOK, "NAME:\n   shipper - preview deployments", ""},
		{"unknown global flag", []string{"--nope"}, exitUsage, "", "shipper: flag provided but not defined: -nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"shipper"}, tc.args...), &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr: %q)", code, tc.wantCode, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout %q, want prefix %q", stdout.String(), tc.wantStdout)
			}
			if tc.wantStderr != "" && !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
			if tc.wantCode == exitOK && stderr.Len() > 0 {
				t.Errorf("stderr %q on success, want nothing", stderr.String())
			}
		})
	}
}

func TestRolloutErrorPrintsLogLines(t *testing.T) {
	var stderr bytes.Buffer
	err := fmt.Errorf("deploying myapp-7c77eb36: %w", &release.RolloutError{
		Release: "myapp-7c77eb36", RolloutError: &kube.RolloutError{Pod: "myapp-7c77eb36-5d9c7-x2x9q", Reason: "CrashLoopBackOff",
			Message: "back-off 40s restarting failed container", Logs: []string{"panic: no config", "exit status 2"}},
	})
	if code := report(err, &stderr); code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	want := "shipper: deploying myapp-7c77eb36: release myapp-7c77eb36 not available: pod myapp-7c77eb36-5d9c7-x2x9q: CrashLoopBackOff: back-off 40s restarting failed container\n" +
		"hint: last log lines of pod myapp-7c77eb36-5d9c7-x2x9q:\n  panic: no config\n  exit status 2\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
}

// TestExitCodeMapping: one mapping serves every package's errors, however
// deeply they are wrapped.
func TestExitCodeMapping(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("deploying x: %w", fmt.Errorf("step: %w", err)) }
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"release usage", wrap(&release.UsageError{Input: "app name", Value: "", Rule: "r"}), exitUsage},
		{"image input", wrap(&image.InputError{Path: "/x", Err: errors.New("bad")}), exitUsage},
		{"cli usage", wrap(usageErrorf("--app is empty")), exitUsage},
		{"registry refused credentials", wrap(&image.RegistryError{Status: 401, Msg: "credentials refused"}), exitUnreachable},
		{"registry not found", wrap(&image.RegistryError{Status: 404, Msg: "not found"}), exitFailed},
		{"cluster unreachable", wrap(&url.Error{Op: "Get", URL: "https://127.0.0.1:1", Err: errors.New("connection refused")}), exitUnreachable},
		{"anything else", wrap(errors.New("boom")), exitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(tc.err); got != tc.want {
				t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestHoistGlobalFlags(t *testing.T) {
	app := newApp(nil, nil)
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"nothing before", "shipper list --app a", "shipper list --app a"},
		{"value flag", "shipper --app a list -o json", "shipper list --app a -o json"},
		{"value after =", "shipper --app=a -o=json list", "shipper list --app=a -o=json"},
		{"bool flag", "shipper -v --app a deploy --sha 1234567", "shipper deploy -v --app a --sha 1234567"},
		{"before, then after: after comes last and wins", "shipper --app a list --app b", "shipper list --app a --app b"},
		{"flag the command lacks stays", "shipper --app a -o json version", "shipper --app a version -o json"},
		{"unknown flag left to the parser", "shipper --nope list", "shipper --nope list"},
		{"missing value left to the parser", "shipper --app", "shipper --app"},
		{"no command", "shipper --app a", "shipper --app a"},
		{"unknown command", "shipper --app a bogus", "shipper --app a bogus"},
		{"help", "shipper --help list", "shipper --help list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(hoistGlobalFlags(app, strings.Fields(tc.in)), " ")
			if got != tc.want {
				t.Errorf("hoistGlobalFlags(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestGlobalFlagsBeforeOrAfterTheCommand runs the CLI: a global flag is
// taken before the command name, a flag after it wins, and the
// environment fills only what no flag gives.
func TestGlobalFlagsBeforeOrAfterTheCommand(t *testing.T) {
	render := []string{"render", "--sha", "7c77eb36", "--domain", "example.com", "--image", "r.example.com/a:1", "--protect", "none"}
	for _, tc := range []struct {
		name    string
		env     string
		args    []string
		wantApp string
	}{
		{"before", "", append([]string{"--app", "before"}, render...), "before"},
		{"after wins over before", "", append(append([]string{"--app", "before"}, render...), "--app", "after"), "after"},
		{"before wins over the environment", "fromenv", append([]string{"--app", "before"}, render...), "before"},
		{"the environment alone", "fromenv", render, "fromenv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SHIPPER_APP", tc.env)
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), append([]string{"shipper"}, tc.args...), &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if want := "name: " + tc.wantApp + "-7c77eb36\n"; !strings.Contains(stdout.String(), want) {
				t.Errorf("render did not use app %q:\n%s", tc.wantApp, stdout.String())
			}
		})
	}

	// Before the command, --app reaches list: it tries the (unreachable)
	// cluster instead of saying --app is empty.
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"shipper", "--app", "myapp", "--kube-url", "https://127.0.0.1:1", "--timeout", "5s", "list"}, &stdout, &stderr)
	if code != exitUnreachable || strings.Contains(stderr.String(), "--app is empty") {
		t.Errorf("shipper --app myapp --kube-url ... list: exit %d, stderr %q; want exit %d (unreachable)", code, stderr.String(), exitUnreachable)
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"shipper", "-o", "json", "version"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("shipper -o json version: exit %d: %s", code, stderr.String())
	}
	var v struct{ Version, Commit, GoVersion, Platform string }
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil || v.Version == "" || v.Platform == "" {
		t.Errorf("shipper -o json version printed %q (%v), want a JSON object with version and platform", stdout.String(), err)
	}
}

// TestRenderWithoutImageNamesTheFlags: the error says what to set, not
// `invalid image ""`.
func TestRenderWithoutImageNamesTheFlags(t *testing.T) {
	t.Setenv("CI_REGISTRY_IMAGE", "")
	t.Setenv("SHIPPER_IMAGE", "")
	t.Setenv("SHIPPER_IMAGE_REF", "")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"shipper", "render", "--app", "a", "--sha", "7c77eb36", "--domain", "example.com"}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "--image is empty") || !strings.Contains(stderr.String(), "CI_REGISTRY_IMAGE") ||
		strings.Contains(stderr.String(), `invalid image ""`) || stdout.Len() != 0 {
		t.Errorf("exit %d stdout %q stderr %q; want exit 2 naming --image and CI_REGISTRY_IMAGE", code, stdout.String(), stderr.String())
	}
}

// TestKlogIsSilentWithoutVerbose: client-go's errors (leader election's
// "Error retrieving lease lock" when a refused operation releases its
// Lease) go through klog, which copies errors to the process's stderr
// unless given a logger. Without -v they must go nowhere.
func TestKlogIsSilentWithoutVerbose(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"shipper", "version"}, &stdout, &stderr)
	klog.ErrorS(errors.New("context canceled"), "Error retrieving lease lock", "lock", "ns/shipper-x")
	klog.Error("an unstructured error")
	klog.Flush()
	os.Stderr = saved
	w.Close()
	leaked, _ := io.ReadAll(r)
	if code != exitOK || len(leaked) > 0 || stderr.Len() > 0 {
		t.Errorf("exit %d; klog wrote %q to the process's stderr and %q to the command's", code, leaked, stderr.String())
	}
}

// TestFlagParseErrorsNeverPrintTheValue: a secret put into the wrong
// variable or flag, or into a --set with a broken item, must not reach the
// job log through a parse error.
func TestFlagParseErrorsNeverPrintTheValue(t *testing.T) {
	const secret = "s3cret-Token-0042"
	render := []string{"render", "--app", "a", "--sha", "7c77eb36", "--domain", "example.com", "--image", "r.example.com/a:1"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"--set with a broken item", nil, append(render, "--set", "env.DB_PASSWORD="+secret+",broken")},
		{"--set with a comma inside the secret", nil, append(render, "--set", "env.DB_PASSWORD=part1,"+secret)},
		{"--set as the second of several", nil, append(render, "--set", "replicaCount=2", "--set", "env.X="+secret+",a[=1")},
		{"duration flag", nil, append(render, "--timeout", secret)},
		{"duration from the environment", map[string]string{"SHIPPER_TIMEOUT": secret}, render},
		{"bool from the environment", map[string]string{"SHIPPER_WAIT": secret}, []string{"deploy", "--app", "a", "--sha", "7c77eb36"}},
		{"bool flag with a value", nil, append(render, "--production="+secret)},
		{"int flag", nil, []string{"package", "--image", "r.example.com/a", "--sha", "7c77eb36", "--port", secret}},
		{"url scheme", nil, append(render, "--url-scheme", secret+"\nEVIL=1")},
		{"values file", nil, append(render, "-f", brokenValues(t, "env:\n  DB_PASSWORD: "+secret+"\n bad: [\n"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"shipper"}, tc.args...), &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != exitUsage || strings.Contains(out, secret) || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
				t.Errorf("exit %d, output:\n%s\nwant exit 2 and one line without the value", code, out)
			}
		})
	}
}

func TestWriteDotenvRefusesLineBreaks(t *testing.T) {
	path := t.TempDir() + "/deploy.env"
	if err := writeDotenv(path, "SHIPPER_URL", "https://a.example.com\nEVIL=1"); err == nil {
		t.Error("a value with a line break was written")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the dotenv file exists after a refusal (%v)", err)
	}
	if err := writeDotenv(path, "SHIPPER_URL", "https://a.example.com"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "SHIPPER_URL=https://a.example.com\n" {
		t.Errorf("dotenv %q", b)
	}
}

func brokenValues(t *testing.T, content string) string {
	path := t.TempDir() + "/values.yaml"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNeverStartedContainerHint(t *testing.T) {
	var stderr bytes.Buffer
	err := fmt.Errorf("deploying x: %w", &release.RolloutError{Release: "x", RolloutError: &kube.RolloutError{Pod: "x-1", Reason: "ErrImagePull", Message: "not found", NeverStarted: true}})
	if code := report(err, &stderr); code != exitFailed {
		t.Errorf("exit %d", code)
	}
	want := "shipper: deploying x: release x not available: pod x-1: ErrImagePull: not found\nhint: the container of pod x-1 never started, so it has no logs\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
}
