package main

import (
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/image"
	"github.com/shipper-dev/shipper/internal/release"
)

// Flag constructors: each flag is defined once here and shared by the
// commands that take it (as containerd's ctr shares flag sets). Every flag
// reads SHIPPER_<NAME> first, then the GitLab variable that fits.

// globalFlags reach the cluster and shape the output. The app has them, and
// so does every command that works on the cluster, so they are accepted
// before or after the command name (see hoistGlobalFlags).
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file", EnvVars: []string{"SHIPPER_KUBECONFIG", "KUBECONFIG"}},
		&cli.StringFlag{Name: "kube-context", Usage: "kubeconfig context", EnvVars: []string{"SHIPPER_KUBE_CONTEXT", "KUBE_CONTEXT"}},
		&cli.StringFlag{Name: "kube-url", Usage: "API server URL (instead of a kubeconfig)", EnvVars: []string{"SHIPPER_KUBE_URL", "KUBE_URL"}},
		&cli.StringFlag{Name: "kube-token", Usage: "bearer token (never printed)", EnvVars: []string{"SHIPPER_KUBE_TOKEN", "KUBE_TOKEN"}},
		&cli.StringFlag{Name: "kube-ca-file", Usage: "PEM file of the API server's CA", EnvVars: []string{"SHIPPER_KUBE_CA_FILE", "KUBE_CA_PEM_FILE"}},
		&cli.StringFlag{Name: "kube-ca", Usage: "PEM text of the API server's CA, or the path of a file holding it (a GitLab File variable)", EnvVars: []string{"SHIPPER_KUBE_CA", "KUBE_CA_PEM"}},
		&cli.BoolFlag{Name: "insecure-skip-tls-verify", Usage: "do not verify the API server's certificate (never do this in production)", EnvVars: []string{"SHIPPER_INSECURE_SKIP_TLS_VERIFY"}},
		&cli.StringFlag{Name: "app", Usage: "app name, slugged into release names and hosts", EnvVars: []string{"SHIPPER_APP", "CI_PROJECT_PATH_SLUG", "CI_PROJECT_NAME"}},
		&cli.StringFlag{Name: "project-id", Usage: "GitLab project that owns the app: recorded on what shipper creates, and no other project's app is touched", EnvVars: []string{"SHIPPER_PROJECT_ID", "CI_PROJECT_ID"}},
		&cli.StringFlag{Name: "project-path", Usage: "that project's path, named in messages", EnvVars: []string{"SHIPPER_PROJECT_PATH", "CI_PROJECT_PATH"}},
		&cli.StringFlag{Name: "router", Value: "ingress", Usage: "how hosts reach commits: ingress (an Ingress per host) or gateway (Gateway API HTTPRoutes on --gateway)", EnvVars: []string{"SHIPPER_ROUTER"}},
		&cli.StringFlag{Name: "gateway", Usage: "NAMESPACE/NAME of the Gateway the gateway router attaches routes to", EnvVars: []string{"SHIPPER_GATEWAY"}},
		&cli.StringFlag{Name: "gateway-section", Usage: "listener of that Gateway (default: all of them)", EnvVars: []string{"SHIPPER_GATEWAY_SECTION"}},
		&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "give up after this long", EnvVars: []string{"SHIPPER_TIMEOUT"}},
		outputFlag(),
		verboseFlag(),
		// Hidden: the stress tests shorten it so that a killed run's locks
		// are taken over in seconds; users have no reason to change it.
		&cli.DurationFlag{Name: "lock-lease", Value: 15 * time.Second, Hidden: true, EnvVars: []string{"SHIPPER_LOCK_LEASE"}},
	}
}

// waitFlag is --wait (SHIPPER_WAIT), on by default: what it waits for is
// usage.
func waitFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: "wait", Value: true, Usage: usage, EnvVars: []string{"SHIPPER_WAIT"}}
}

// verifyFlags are --verify and --verify-address, read by verify.
func verifyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "verify", Usage: "gateway router: return only once the URL answers from the commit (its Shipper-Commit header)", EnvVars: []string{"SHIPPER_VERIFY"}},
		&cli.StringFlag{Name: "verify-address", Usage: "HOST:PORT to send --verify's requests to instead of the URL's host (the Gateway's address), as curl --connect-to", EnvVars: []string{"SHIPPER_VERIFY_ADDRESS"}},
	}
}

// verify is the release.Verify the flags ask for, nil without --verify.
func verify(c *cli.Context) *release.Verify {
	if !c.Bool("verify") {
		return nil
	}
	return &release.Verify{Address: c.String("verify-address")}
}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json", EnvVars: []string{"SHIPPER_OUTPUT"}}
}

func verboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log debug events too, in milliseconds: each Kubernetes API request (method, path, status, time) and their count at the end", EnvVars: []string{"SHIPPER_VERBOSE"}}
}

// chartFlags choose the chart and its values; deploy, promote and render
// share them.
func chartFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "domain", Usage: "base domain of the preview and production hosts", EnvVars: []string{"SHIPPER_DOMAIN", "KUBE_INGRESS_BASE_DOMAIN"}},
		&cli.StringSliceFlag{Name: "values", Aliases: []string{"f"}, Usage: "chart values file (repeatable)", EnvVars: []string{"SHIPPER_VALUES"}},
		&cli.StringSliceFlag{Name: "set", Usage: "chart value KEY=VALUE, as helm --set (repeatable)"},
		&cli.StringFlag{Name: "chart", Usage: "chart directory, .tgz or oci:// reference (default: the embedded chart)", EnvVars: []string{"SHIPPER_CHART"}},
		&cli.StringFlag{Name: "ingress-class", Usage: "IngressClass of the preview and production Ingresses", EnvVars: []string{"SHIPPER_INGRESS_CLASS"}},
		&cli.StringFlag{Name: "url-scheme", Value: "https", Usage: "scheme of the printed URLs (http for a local ingress without TLS)", EnvVars: []string{"SHIPPER_URL_SCHEME"}},
	}
}

// commitFlags name the commit: GitLab's short SHA, and the full one that
// images and releases record when it extends the short one
// (release.CommitSHA).
func commitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "sha", Usage: "commit SHA (7 to 40 hex characters)", EnvVars: []string{"SHIPPER_SHA", "CI_COMMIT_SHORT_SHA"}},
		&cli.StringFlag{Name: "full-sha", Usage: "full commit SHA, recorded when it extends --sha", EnvVars: []string{"SHIPPER_FULL_SHA", "CI_COMMIT_SHA"}},
	}
}

// imageFlags name the commit's image: deploy and render share them.
func imageFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "image", Usage: "image reference (default $CI_REGISTRY_IMAGE:<short sha>)", EnvVars: []string{"SHIPPER_IMAGE_REF"}},
		&cli.StringFlag{Name: "repository", Usage: "repository the default image is in", EnvVars: []string{"SHIPPER_IMAGE", "CI_REGISTRY_IMAGE"}},
	}
}

// registryFlags reach the registry: package pushes, deploy resolves.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "registry-user", Usage: "registry user", EnvVars: []string{"SHIPPER_REGISTRY_USER", "CI_REGISTRY_USER"}},
		&cli.StringFlag{Name: "registry-password", Usage: "registry password (never printed)", EnvVars: []string{"SHIPPER_REGISTRY_PASSWORD", "CI_REGISTRY_PASSWORD"}},
		&cli.BoolFlag{Name: "insecure-registry", Usage: "allow plain HTTP to a registry not on loopback", EnvVars: []string{"SHIPPER_INSECURE_REGISTRY"}},
	}
}

// flags joins flag sets.
func flags(sets ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

// appNames are the names of --app.
func appNames(c *cli.Context) (release.Names, error) {
	a := c.String("app")
	if a == "" {
		return release.Names{}, usageErrorf("--app is empty: name the app (or set SHIPPER_APP; GitLab sets CI_PROJECT_PATH_SLUG)")
	}
	return release.NewNames(a, "")
}

// commitNames are the names of --app's commit --sha (or --full-sha).
func commitNames(c *cli.Context) (release.Names, error) {
	n, err := appNames(c)
	if err != nil {
		return n, err
	}
	sha, err := release.CommitSHA(c.String("sha"), c.String("full-sha"))
	if err != nil {
		return n, err
	}
	return n.WithSHA(sha)
}

// imageRef is --image, or the image `shipper package` pushed for commit n
// in --repository.
func imageRef(c *cli.Context, n release.Names) (string, error) {
	if ref := c.String("image"); ref != "" {
		return ref, nil
	}
	if repo := c.String("repository"); repo != "" {
		return n.Image(repo), nil
	}
	return "", usageErrorf("--image is empty: give the image reference, or its repository with --repository (GitLab sets CI_REGISTRY_IMAGE)")
}

// registryOptions reach the registry with --registry-user, else with the
// given fallback credentials (deploy's pull user), else the Docker config.
func registryOptions(c *cli.Context, fallbackUser, fallbackPassword string) image.Options {
	o := image.Options{Insecure: c.Bool("insecure-registry"), Log: logger(c)}
	o.Username, o.Password = c.String("registry-user"), c.String("registry-password")
	if o.Username == "" {
		o.Username, o.Password = fallbackUser, fallbackPassword
	}
	return o
}

// chartValues merges --values files, --set and --ingress-class.
func chartValues(c *cli.Context) (map[string]any, error) {
	sets := c.StringSlice("set")
	if ic := c.String("ingress-class"); ic != "" {
		sets = append([]string{"ingress.className=" + ic}, sets...)
	}
	return release.ParseValues(commaList(c.StringSlice("values")), sets)
}

// commaList splits each item on commas, as urfave/cli would have done for
// a flag whose items never hold one (files, platforms): SHIPPER_VALUES can
// name several files.
func commaList(items []string) []string {
	var out []string
	for _, it := range items {
		for _, s := range strings.Split(it, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// hostVars are the variables deploy's and promote's --host read; render,
// whose one --host serves both modes, reads the one of its mode.
var hostVars = map[bool]string{false: "SHIPPER_PREVIEW_HOST", true: "SHIPPER_PRODUCTION_HOST"}

// hosts builds the host rules; --host is an explicit host or a template.
func hosts(c *cli.Context, production bool) release.Hosts {
	h := release.Hosts{Domain: c.String("domain"), Scheme: c.String("url-scheme")}
	tmpl := c.String("host")
	if tmpl == "" {
		tmpl = os.Getenv(hostVars[production])
	}
	if production {
		h.ProductionTemplate = tmpl
	} else {
		h.PreviewTemplate = tmpl
	}
	return h
}

// hoistGlobalFlags moves the global flags given before the command name to
// just after it, where the command's own copies of them are parsed.
// urfave/cli v2 has no persistent flags (v3 does): a command that defines a
// flag reads its own copy, so `shipper --app x list` would otherwise ignore
// --app. Flags given after the command name come later and still win, and
// environment variables fill only the flags given nowhere. A flag the
// command does not take stays where it is; anything this cannot parse is
// left for urfave/cli to report.
func hoistGlobalFlags(app *cli.App, args []string) []string {
	takesValue := map[string]bool{}
	for _, f := range app.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, name := range f.Names() {
			takesValue[name] = !isBool
		}
	}
	type given struct {
		name   string
		tokens []string
	}
	var before []given
	i := 1
	for i < len(args) {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		tv, known := takesValue[name]
		if !known {
			return args
		}
		n := 1
		if tv && !hasValue {
			n = 2
		}
		if i+n > len(args) {
			return args
		}
		before = append(before, given{name, args[i : i+n]})
		i += n
	}
	if len(before) == 0 || i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	defined := map[string]bool{}
	for _, f := range cmd.Flags {
		for _, name := range f.Names() {
			defined[name] = true
		}
	}
	kept, moved := []string{args[0]}, []string{args[i]}
	for _, g := range before {
		if defined[g.name] {
			moved = append(moved, g.tokens...)
		} else {
			kept = append(kept, g.tokens...)
		}
	}
	return append(append(kept, moved...), args[i+1:]...)
}
