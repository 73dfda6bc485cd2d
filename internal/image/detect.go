package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Detection is how to run an app, worked out from its files for `shipper
// package` without --entrypoint or --cmd: zero-config packaging, as the
// detection of Heroku's and the Cloud Native buildpacks, kept to one table.
type Detection struct {
	// Kind names the rule that matched: node, php, python or ruby.
	Kind string
	// Cmd is the image's command: words run from Workdir without a shell,
	// since the smallest bases have none. It is the image's Cmd, not its
	// Entrypoint, so an official image's entrypoint script (node's
	// docker-entrypoint.sh, php's docker-php-entrypoint) still runs and
	// execs it.
	Cmd []string
	// Workdir is where the app lands and Cmd runs; Cmd's paths are relative
	// to it.
	Workdir string
	// Base is the kind's default base image, an official Docker Hub image.
	Base string
	// Port is the port Cmd listens on: the one asked for, else DefaultPort.
	Port int
	// Env is PORT=Port and the kind's defaults, as KEY=VALUE.
	Env []string
	// Ignore holds .dockerignore patterns that go before the context's own
	// .dockerignore, which can re-include what they exclude with "!".
	Ignore []string
	// Why says in one line which files decided, for the job log.
	Why string
}

// ErrUndetected is wrapped by Detect's error when no rule matches the
// directory, or the rule that matches finds nothing to run: the command
// has to be given.
var ErrUndetected = errors.New("nothing detected to run")

// ErrUnknownApp is wrapped, beside ErrUndetected, when no rule's marker is
// in the directory at all: it is no app of a kind shipper knows, and a
// base of the user's may run it with its own command (a static site on
// nginx). A rule that matched and found nothing to run is not that case.
var ErrUnknownApp = errors.New("no app kind recognized")

// DefaultPort is the port of a detected app when none is given, the
// chart's containerPort default.
const DefaultPort = 8080

// rule is one row of the detection table.
type rule struct {
	kind string
	// markers select the rule when any of them is a file at the top of
	// the context.
	markers []string
	// base is the default base: an official image whose interpreter runs
	// the command.
	base   string
	env    []string
	ignore []string
	// command sets d.Cmd (and may add to d.Ignore) and says why.
	command func(dir string, d *Detection) (why string, err error)
}

// rules is the detection table. The first rule with a marker decides;
// there is no falling through to the next one when it finds nothing to
// run. package.json comes last because PHP, Python and Ruby apps often
// carry one for their front-end tooling (Laravel, Django or Rails with
// Vite): those are not Node.js servers.
var rules = []rule{
	{kind: "php", markers: []string{"composer.json", "index.php"}, base: "php:8.2-cli-alpine", command: phpCommand},
	{kind: "python", markers: []string{"requirements.txt", "pyproject.toml", "app.py"}, base: "python:3.12-alpine",
		// Logs reach `kubectl logs` as they are printed, not when a
		// block-sized buffer fills.
		env: []string{"PYTHONUNBUFFERED=1"},
		// A virtualenv is not relocatable, and its symlinks to the
		// interpreter point outside the context, which packaging refuses.
		ignore:  []string{"**/__pycache__", ".pytest_cache", ".venv"},
		command: pythonCommand},
	{kind: "ruby", markers: []string{"Gemfile", "config.ru", "app.rb"}, base: "ruby:3.3-alpine", command: rubyCommand},
	{kind: "node", markers: []string{"package.json"}, base: "node:22-alpine", ignore: []string{".npm"}, command: nodeCommand},
}

// commonIgnore is left out of every detected app: history and caches.
var commonIgnore = []string{".git", ".cache"}

// Detect works out how to run the app in dir on port (0: DefaultPort)
// from the files at its top, with the rules table. An app nothing
// recognizes is an *InputError wrapping ErrUndetected.
func Detect(dir string, port int) (*Detection, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, &InputError{Path: dir, Err: errors.New("build context must be a readable directory")}
	}
	if port == 0 {
		port = DefaultPort
	}
	var all []string
	for _, r := range rules {
		all = append(all, r.markers...)
		marker := firstFile(dir, r.markers)
		if marker == "" {
			continue
		}
		d := &Detection{
			Kind: r.kind, Workdir: "/app", Base: r.base, Port: port,
			Env:    append([]string{"PORT=" + strconv.Itoa(port)}, r.env...),
			Ignore: append(append([]string{}, commonIgnore...), r.ignore...),
		}
		why, err := r.command(dir, d)
		if err != nil {
			return nil, &InputError{Path: dir, Err: fmt.Errorf("%s app (%s): %w", r.kind, marker, err)}
		}
		d.Why = marker + ": " + why
		return d, nil
	}
	return nil, &InputError{Path: dir, Err: fmt.Errorf("%w (%w): none of %s at its top", ErrUndetected, ErrUnknownApp, strings.Join(all, ", "))}
}

// nodeCommand runs package.json's start script, else its main. A start
// script that is a plain `node ...` command runs without npm: the base
// then needs no npm nor shell (npm runs scripts with sh -c), and node gets
// SIGTERM itself. node_modules is kept when vendored: present, with
// package.json declaring dependencies. shipper installs nothing, so these
// are the app's own; without declared dependencies it can only hold
// development tools, and is left out.
func nodeCommand(dir string, d *Detection) (string, error) {
	var pkg struct {
		Main         string            `json:"main"`
		Scripts      map[string]string `json:"scripts"`
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil {
		return "", fmt.Errorf("reading package.json: %w", err)
	}
	var why string
	switch start := strings.TrimSpace(pkg.Scripts["start"]); {
	case plainNode(start):
		d.Cmd, why = strings.Fields(start), fmt.Sprintf("start script %q, run without npm", start)
	case start != "":
		d.Cmd, why = []string{"npm", "start"}, fmt.Sprintf("start script %q", start)
	default:
		main := pkg.Main
		if main == "" {
			main = "index.js"
		}
		if !filepath.IsLocal(main) {
			return "", fmt.Errorf("%w: package.json's main %q is outside the app: make it a path inside it", ErrUndetected, main)
		}
		if !isFile(dir, main) && !isFile(dir, main+".js") {
			return "", fmt.Errorf("%w: no start script, and its main %s is not a file", ErrUndetected, main)
		}
		// "./": a main named like an option (-r x.js) stays a file.
		d.Cmd, why = []string{"node", "./" + filepath.ToSlash(filepath.Clean(main))}, "no start script, main "+main
	}
	switch vendored := isDir(dir, "node_modules"); {
	case vendored && len(pkg.Dependencies) > 0:
		why += "; node_modules kept (vendored dependencies)"
	case len(pkg.Dependencies) > 0:
		d.Ignore = append(d.Ignore, "node_modules")
		why += "; dependencies declared but no node_modules: install them before packaging (npm ci --omit=dev)"
	case vendored:
		d.Ignore = append(d.Ignore, "node_modules")
		why += "; node_modules left out (no dependencies declared, so development tools only)"
	default:
		d.Ignore = append(d.Ignore, "node_modules")
	}
	return why, nil
}

// plainNode reports whether a start script is `node ARGS` with nothing a
// shell would interpret.
func plainNode(script string) bool {
	return strings.HasPrefix(script, "node ") && !strings.ContainsAny(script, "$&|;<>()`\"'\\*?[]{}~#")
}

// phpCommand serves the app with PHP's built-in server. Its address is on
// the command line, and no shell expands $PORT there, so the port is the
// one known now (--port). public/, the frameworks' document root, is
// served when it holds index.php; else index.php is the router script of every
// request, so that composer.json, .env or vendor/ are never served as
// files.
func phpCommand(dir string, d *Detection) (string, error) {
	addr := "0.0.0.0:" + strconv.Itoa(d.Port)
	switch {
	case isFile(dir, "public/index.php"):
		// Only a public/ with its front controller is the document root:
		// one of assets beside a top-level index.php is not.
		d.Cmd = []string{"php", "-S", addr, "-t", "public"}
		return "document root public/", nil
	case isFile(dir, "index.php"):
		d.Cmd = []string{"php", "-S", addr, "-t", ".", "index.php"}
		return "no public/index.php, index.php routes every request", nil
	}
	return "", fmt.Errorf("%w: neither public/index.php nor index.php to serve", ErrUndetected)
}

// pythonCommand runs app.py, else main.py. A WSGI or ASGI app under a
// server (gunicorn, uvicorn) gives its command with --cmd.
func pythonCommand(dir string, d *Detection) (string, error) {
	entry := firstFile(dir, []string{"app.py", "main.py"})
	if entry == "" {
		return "", fmt.Errorf("%w: neither app.py nor main.py to run", ErrUndetected)
	}
	d.Cmd = []string{"python3", entry}
	return "runs " + entry, nil
}

// rubyCommand runs config.ru with rackup, the Rack convention, else
// app.rb. rackup and the gems are the base's or the app's vendor/bundle:
// shipper installs nothing.
func rubyCommand(dir string, d *Detection) (string, error) {
	switch {
	case isFile(dir, "config.ru"):
		d.Cmd = []string{"rackup", "--host", "0.0.0.0", "--port", strconv.Itoa(d.Port)}
		return "Rack app config.ru", nil
	case isFile(dir, "app.rb"):
		d.Cmd = []string{"ruby", "app.rb"}
		return "runs app.rb", nil
	}
	return "", fmt.Errorf("%w: neither config.ru nor app.rb to run", ErrUndetected)
}

// firstFile is the first of names that is a file in dir, or "".
func firstFile(dir string, names []string) string {
	for _, n := range names {
		if isFile(dir, n) {
			return n
		}
	}
	return ""
}

func isFile(dir, name string) bool {
	st, err := os.Stat(filepath.Join(dir, name))
	return err == nil && st.Mode().IsRegular()
}

func isDir(dir, name string) bool {
	st, err := os.Stat(filepath.Join(dir, name))
	return err == nil && st.IsDir()
}
