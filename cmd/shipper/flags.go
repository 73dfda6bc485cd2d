package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

// globalFlags reach the cluster and shape the output; every command has them.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file", EnvVars: []string{"SHIPPER_KUBECONFIG", "KUBECONFIG"}},
		&cli.StringFlag{Name: "kube-context", Usage: "kubeconfig context", EnvVars: []string{"SHIPPER_KUBE_CONTEXT", "KUBE_CONTEXT"}},
		&cli.StringFlag{Name: "kube-url", Usage: "API server URL (instead of a kubeconfig)", EnvVars: []string{"SHIPPER_KUBE_URL", "KUBE_URL"}},
		&cli.StringFlag{Name: "kube-token", Usage: "bearer token (never printed)", EnvVars: []string{"SHIPPER_KUBE_TOKEN", "KUBE_TOKEN"}},
		&cli.StringFlag{Name: "kube-ca-file", Usage: "PEM file of the API server's CA", EnvVars: []string{"SHIPPER_KUBE_CA_FILE", "KUBE_CA_PEM_FILE"}},
		&cli.StringFlag{Name: "kube-ca", Usage: "PEM text of the API server's CA", EnvVars: []string{"SHIPPER_KUBE_CA", "KUBE_CA_PEM"}},
		&cli.BoolFlag{Name: "insecure-skip-tls-verify", Usage: "do not verify the API server's certificate (never do this in production)", EnvVars: []string{"SHIPPER_INSECURE_SKIP_TLS_VERIFY"}},
		&cli.StringFlag{Name: "app", Usage: "app name, slugged into release names", EnvVars: []string{"SHIPPER_APP", "CI_PROJECT_NAME"}},
		&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "give up after this long", EnvVars: []string{"SHIPPER_TIMEOUT"}},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json", EnvVars: []string{"SHIPPER_OUTPUT"}},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log debug events too", EnvVars: []string{"SHIPPER_VERBOSE"}},
	}
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

// shaFlag names the commit; GitLab's short SHA by default.
func shaFlag() cli.Flag {
	return &cli.StringFlag{Name: "sha", Usage: "commit SHA (7 to 40 hex characters)", EnvVars: []string{"SHIPPER_SHA", "CI_COMMIT_SHORT_SHA"}}
}

// fullSHAFlag lets deploy record the full SHA when the short one names it.
func fullSHAFlag() cli.Flag {
	return &cli.StringFlag{Name: "full-sha", Usage: "full commit SHA, recorded as COMMIT_SHA", EnvVars: []string{"SHIPPER_FULL_SHA", "CI_COMMIT_SHA"}}
}

// app returns the app name or a usage error.
func app(c *cli.Context) (string, error) {
	a := c.String("app")
	if a == "" {
		return "", usageError{errors.New("--app is empty: name the app (or set SHIPPER_APP; GitLab sets CI_PROJECT_NAME)")}
	}
	return a, nil
}

// commitSHA returns the SHA to name the commit by: the full one when it
// extends the short one (so COMMIT_SHA is complete), else the short one.
func commitSHA(c *cli.Context) (string, error) {
	short, full := strings.ToLower(c.String("sha")), strings.ToLower(c.String("full-sha"))
	if short == "" && full == "" {
		return "", usageError{errors.New("--sha is empty: name the commit (or set CI_COMMIT_SHORT_SHA)")}
	}
	if full != "" && (short == "" || strings.HasPrefix(full, short)) {
		return full, nil
	}
	return short, nil
}

// configuration connects to the cluster.
func configuration(c *cli.Context) (*release.Configuration, error) {
	rc, err := release.KubeOptions{
		Kubeconfig: c.String("kubeconfig"), Context: c.String("kube-context"),
		URL: c.String("kube-url"), Token: c.String("kube-token"),
		CAFile: c.String("kube-ca-file"), CAData: c.String("kube-ca"),
		Insecure: c.Bool("insecure-skip-tls-verify"),
	}.RESTConfig()
	if err != nil {
		return nil, err
	}
	opts := []release.Option{release.WithLogger(logger(c))}
	if ref := c.String("chart"); ref != "" {
		opts = append(opts, release.WithChart(release.ChartSource{Ref: ref}))
	}
	return release.NewConfiguration(rc, opts...)
}

// chartValues merges --values files, --set and --ingress-class.
func chartValues(c *cli.Context) (map[string]any, error) {
	sets := c.StringSlice("set")
	if ic := c.String("ingress-class"); ic != "" {
		sets = append([]string{"ingress.className=" + ic}, sets...)
	}
	return release.ParseValues(c.StringSlice("values"), sets)
}

// hosts builds the host rules; --host is an explicit host or a template.
func hosts(c *cli.Context, production bool) release.Hosts {
	h := release.Hosts{Domain: c.String("domain"), Scheme: c.String("url-scheme")}
	if production {
		h.ProductionTemplate = c.String("host")
	} else {
		h.PreviewTemplate = c.String("host")
	}
	return h
}

// printJSON writes v as indented JSON to stdout.
func printJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func jsonOutput(c *cli.Context) bool { return c.String("output") == "json" }

// writeDotenv writes KEY=VALUE for GitLab's artifacts:reports:dotenv.
func writeDotenv(path, key, value string) error {
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte(key+"="+value+"\n"), 0o644)
}

// withTimeout applies --timeout to the command's context, in this one place.
func withTimeout(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, c.Duration("timeout"))
}

// clusterAction is the Action of a command that works on the app in the
// cluster: it checks --output, reads --app, connects, applies --timeout,
// runs fn, and maps its error to an exit code.
func clusterAction(fn func(ctx context.Context, c *cli.Context, cfg *release.Configuration, app string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := checkOutput(c); err != nil {
			return err
		}
		appName, err := app(c)
		if err != nil {
			return err
		}
		cfg, err := configuration(c)
		if err != nil {
			return releaseError(err)
		}
		ctx, cancel := withTimeout(c)
		defer cancel()
		return releaseError(fn(ctx, c, cfg, appName))
	}
}

// releaseError maps internal/release errors to exit codes.
func releaseError(err error) error {
	switch {
	case err == nil:
		return nil
	case release.IsUsage(err):
		return usageError{err}
	case release.Unreachable(err):
		return unreachableError{err}
	}
	return err
}

// checkOutput refuses an unknown --output before anything runs.
func checkOutput(c *cli.Context) error {
	switch o := c.String("output"); o {
	case "text", "json":
		return nil
	default:
		return usageError{fmt.Errorf("--output %q: must be text or json", o)}
	}
}
