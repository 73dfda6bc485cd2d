package image_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/image"
)

func TestDetect(t *testing.T) {
	const startNode = `{"scripts": {"start": "node server.js"}}`
	for _, tc := range []struct {
		name  string
		files map[string]string
		port  int
		kind  string
		cmd   []string
		base  string
		why   string // a part of Why
	}{
		{name: "node start script run without npm", files: map[string]string{"package.json": startNode, "server.js": ""},
			kind: "node", cmd: []string{"node", "server.js"}, base: "node:22-alpine", why: `package.json: start script "node server.js", run without npm`},
		{name: "node start script needing a shell", files: map[string]string{"package.json": `{"scripts": {"start": "node build.js && node server.js"}}`},
			kind: "node", cmd: []string{"npm", "start"}, base: "node:22-alpine"},
		{name: "node start script of another tool", files: map[string]string{"package.json": `{"scripts": {"start": "next start"}}`},
			kind: "node", cmd: []string{"npm", "start"}, base: "node:22-alpine"},
		{name: "node main without start script", files: map[string]string{"package.json": `{"main": "lib/app.js"}`, "lib/app.js": ""},
			kind: "node", cmd: []string{"node", "./lib/app.js"}, base: "node:22-alpine", why: "main lib/app.js"},
		{name: "node main defaults to index.js", files: map[string]string{"package.json": `{}`, "index.js": ""},
			kind: "node", cmd: []string{"node", "./index.js"}, base: "node:22-alpine"},
		{name: "php public docroot", files: map[string]string{"composer.json": `{}`, "public/index.php": ""}, port: 9000,
			kind: "php", cmd: []string{"php", "-S", "0.0.0.0:9000", "-t", "public"}, base: "php:8.2-cli-alpine", why: "document root public/"},
		{name: "php index.php routes", files: map[string]string{"index.php": ""},
			kind: "php", cmd: []string{"php", "-S", "0.0.0.0:8080", "-t", ".", "index.php"}, base: "php:8.2-cli-alpine", why: "index.php: no public/"},
		// A public/ of assets beside a top-level index.php is no document root.
		{name: "php public assets, index.php routes", files: map[string]string{"index.php": "", "public/app.css": ""},
			kind: "php", cmd: []string{"php", "-S", "0.0.0.0:8080", "-t", ".", "index.php"}, base: "php:8.2-cli-alpine", why: "index.php: no public/"},
		{name: "python requirements and app.py", files: map[string]string{"requirements.txt": "", "app.py": ""},
			kind: "python", cmd: []string{"python3", "app.py"}, base: "python:3.12-alpine", why: "requirements.txt: runs app.py"},
		{name: "python app.py alone", files: map[string]string{"app.py": ""},
			kind: "python", cmd: []string{"python3", "app.py"}, base: "python:3.12-alpine"},
		{name: "python pyproject and main.py", files: map[string]string{"pyproject.toml": "", "main.py": ""},
			kind: "python", cmd: []string{"python3", "main.py"}, base: "python:3.12-alpine"},
		{name: "ruby app.rb", files: map[string]string{"Gemfile": "", "app.rb": ""},
			kind: "ruby", cmd: []string{"ruby", "app.rb"}, base: "ruby:3.3-alpine", why: "Gemfile: runs app.rb"},
		{name: "ruby config.ru before app.rb", files: map[string]string{"config.ru": "", "app.rb": ""}, port: 3000,
			kind: "ruby", cmd: []string{"rackup", "--host", "0.0.0.0", "--port", "3000"}, base: "ruby:3.3-alpine"},
		{name: "php before node (front-end tooling)", files: map[string]string{"composer.json": `{}`, "package.json": startNode, "public/index.php": ""},
			kind: "php", cmd: []string{"php", "-S", "0.0.0.0:8080", "-t", "public"}, base: "php:8.2-cli-alpine"},
		{name: "python before node", files: map[string]string{"requirements.txt": "", "app.py": "", "package.json": startNode},
			kind: "python", cmd: []string{"python3", "app.py"}, base: "python:3.12-alpine"},
		{name: "ruby before node", files: map[string]string{"Gemfile": "", "app.rb": "", "package.json": startNode},
			kind: "ruby", cmd: []string{"ruby", "app.rb"}, base: "ruby:3.3-alpine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tc.files)
			got, err := image.Detect(dir, tc.port)
			if err != nil {
				t.Fatal(err)
			}
			wantPort := tc.port
			if wantPort == 0 {
				wantPort = image.DefaultPort
			}
			if got.Kind != tc.kind || !reflect.DeepEqual(got.Cmd, tc.cmd) || got.Base != tc.base || got.Port != wantPort || got.Workdir != "/app" {
				t.Errorf("got kind %s cmd %q base %s port %d workdir %s; want %s %q %s %d /app", got.Kind, got.Cmd, got.Base, got.Port, got.Workdir, tc.kind, tc.cmd, tc.base, wantPort)
			}
			if !strings.Contains(got.Why, tc.why) {
				t.Errorf("why %q, want it to contain %q", got.Why, tc.why)
			}
			if !slices.Contains(got.Env, "PORT="+strconv.Itoa(wantPort)) {
				t.Errorf("env %q lacks PORT=%d", got.Env, wantPort)
			}
			for _, p := range []string{".git", ".cache"} {
				if !slices.Contains(got.Ignore, p) {
					t.Errorf("ignore %q lacks %s", got.Ignore, p)
				}
			}
		})
	}
}

// TestDetectNodeModules: node_modules is kept only when vendored, that is
// present with dependencies declared in package.json.
func TestDetectNodeModules(t *testing.T) {
	for _, tc := range []struct {
		name, pkg   string
		nodeModules bool
		excluded    bool
		why         string
	}{
		{"vendored", `{"main": "index.js", "dependencies": {"express": "^4"}}`, true, false, "node_modules kept"},
		{"development tools only", `{"main": "index.js", "devDependencies": {"eslint": "^9"}}`, true, true, "node_modules left out"},
		{"nothing to keep", `{"main": "index.js"}`, false, true, ""},
		{"dependencies not installed", `{"main": "index.js", "dependencies": {"express": "^4"}}`, false, true, "install them before packaging"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"package.json": tc.pkg, "index.js": ""}
			if tc.nodeModules {
				files["node_modules/m/index.js"] = ""
			}
			writeTree(t, dir, files)
			got, err := image.Detect(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(got.Ignore, "node_modules") != tc.excluded {
				t.Errorf("ignore %q: node_modules excluded should be %v", got.Ignore, tc.excluded)
			}
			if !strings.Contains(got.Why, tc.why) {
				t.Errorf("why %q, want it to contain %q", got.Why, tc.why)
			}
		})
	}
}

func TestDetectNothingToRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"empty", nil, "nothing detected to run (no app kind recognized): none of composer.json, index.php, requirements.txt"},
		{"static site", map[string]string{"index.html": "<h1>hi</h1>"}, "none of"},
		{"node without start or main", map[string]string{"package.json": `{"main": "gone.js"}`}, "node app (package.json): nothing detected to run: no start script, and its main gone.js is not a file"},
		{"php without public or index.php", map[string]string{"composer.json": `{}`}, "neither public/index.php nor index.php"},
		{"node main outside the app", map[string]string{"package.json": `{"main": "../outside.js"}`}, `main "../outside.js" is outside the app`},
		{"python without entry", map[string]string{"requirements.txt": "flask\n"}, "neither app.py nor main.py"},
		{"ruby without entry", map[string]string{"Gemfile": ""}, "neither config.ru nor app.rb"},
		{"marker that is a directory", map[string]string{"app.py/x": ""}, "none of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tc.files)
			_, err := image.Detect(dir, 0)
			var ie *image.InputError
			if !errors.Is(err, image.ErrUndetected) || !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want an *InputError wrapping ErrUndetected, containing %q", err, tc.want)
			}
		})
	}
	t.Run("bad package.json is bad input, not undetected", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"package.json": "{"})
		_, err := image.Detect(dir, 0)
		var ie *image.InputError
		if err == nil || errors.Is(err, image.ErrUndetected) || !errors.As(err, &ie) || !strings.Contains(err.Error(), "reading package.json") {
			t.Errorf("err = %v, want an *InputError about reading package.json", err)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		_, err := image.Detect(filepath.Join(t.TempDir(), "gone"), 0)
		if err == nil || errors.Is(err, image.ErrUndetected) || !strings.Contains(err.Error(), "build context must be a readable directory") {
			t.Errorf("err = %v, want the unreadable context error", err)
		}
	})
}

// TestDetectExamples runs detection on the sample apps of examples/.
func TestDetectExamples(t *testing.T) {
	for _, tc := range []struct {
		dir, kind string
		cmd       []string
	}{
		{"node", "node", []string{"node", "server.js"}},
		{"php", "php", []string{"php", "-S", "0.0.0.0:8080", "-t", ".", "index.php"}},
		{"python", "python", []string{"python3", "app.py"}},
		{"ruby", "ruby", []string{"ruby", "app.rb"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			got, err := image.Detect(filepath.Join("..", "..", "examples", tc.dir), 0)
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tc.kind || !reflect.DeepEqual(got.Cmd, tc.cmd) {
				t.Errorf("got %s %q, want %s %q (why: %s)", got.Kind, got.Cmd, tc.kind, tc.cmd, got.Why)
			}
		})
	}
	if _, err := image.Detect(filepath.Join("..", "..", "examples", "hello"), 0); !errors.Is(err, image.ErrUndetected) {
		t.Errorf("examples/hello (a Go binary's source): err = %v, want ErrUndetected", err)
	}
}

// TestDetectedIgnoreInLayer: the defaults apply where the layer is built,
// before the context's .dockerignore, which can bring a path back.
func TestDetectedIgnoreInLayer(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".dockerignore":              "!.cache/keep\n",
		"app.py":                     "print('hi')\n",
		"pkg/__pycache__/m.pyc":      "x",
		"pkg/m.py":                   "",
		".pytest_cache/v":            "x",
		".cache/pip/x":               "x",
		".cache/keep":                "kept",
		".venv/bin/python":           "->/usr/bin/python3", // would be refused: it points outside
		"node_modules/dev-tool/x.js": "x",
	})
	d, err := image.Detect(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	art, err := image.Build(context.Background(), image.Spec{Context: dir, Created: created, Cmd: d.Cmd, Ignore: d.Ignore}, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer art.Close()
	hdrs, _ := layerEntries(t, art.Image)
	for _, n := range []string{"app/pkg/__pycache__/m.pyc", "app/.pytest_cache/v", "app/.cache/pip/x", "app/.venv/bin/python"} {
		if hdrs[n] != nil {
			t.Errorf("%s is in the layer, the python defaults exclude it", n)
		}
	}
	for _, n := range []string{"app/app.py", "app/pkg/m.py", "app/.cache/keep", "app/node_modules/dev-tool/x.js"} {
		if hdrs[n] == nil {
			t.Errorf("%s is missing from the layer", n)
		}
	}
}
