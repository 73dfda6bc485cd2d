package main

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/gate"
)

// The gate's secrets come from the environment only (the preview's Secret,
// as the pod's env), never from flags: a flag is visible in the process
// list.
const (
	gateKeyVar      = "SHIPPER_GATE_KEY"
	gatePasswordVar = "SHIPPER_PREVIEW_PASSWORD"
	gateBypassVar   = "SHIPPER_PROTECTION_BYPASS"
)

func gateCommand() *cli.Command {
	return &cli.Command{
		Name:  "gate",
		Usage: "protect a preview: run in its pod, in front of the app, letting in only a login, a share link or the automation bypass",
		UsageText: "shipper gate --app APP --sha SHA [--listen ADDR] [--upstream URL] [--login-host HOST --domain DOMAIN]\n\n" +
			"Secrets from the environment only: " + gateKeyVar + " (base64, 32 bytes or more: signs sessions and share links), " +
			gatePasswordVar + " (the login page's password; none: share links only), " + gateBypassVar + " (header X-Shipper-Bypass for automation).\n\n" +
			"Example:\n   $ SHIPPER_GATE_KEY=$(head -c 32 /dev/urandom | base64) SHIPPER_PREVIEW_PASSWORD=s3cret \\\n" +
			"       shipper gate --app myapp --sha 7c77eb36 --upstream http://127.0.0.1:8081 --url-scheme http",
		Flags: append([]cli.Flag{
			appFlag(),
			shaFlag(),
			&cli.StringFlag{Name: "listen", Value: ":8080", Usage: "address the gate serves on (the Service's target)", EnvVars: []string{"SHIPPER_GATE_LISTEN"}},
			&cli.StringFlag{Name: "upstream", Value: "http://127.0.0.1:8081", Usage: "the app, on loopback in the same pod", EnvVars: []string{"SHIPPER_GATE_UPSTREAM"}},
			&cli.StringFlag{Name: "login-host", Usage: "the app's host where logins happen (its production host): one login then opens every preview", EnvVars: []string{"SHIPPER_GATE_LOGIN_HOST"}},
		}, append(hostFlags(), oidcFlags()...)...),
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("gate takes no arguments, got %q", c.Args().First())
			}
			cfg, err := gateConfig(c)
			if err == nil {
				err = withOIDC(c, &cfg) // gate_oidc.go
			}
			if err != nil {
				return err
			}
			g, err := gate.New(cfg)
			if err != nil {
				return usageErrorf("%v", err)
			}
			return serveGate(c.Context, c.String("listen"), g)
		},
	}
}

// gateConfig reads the gate's flags and secrets; a bad one is a usage
// error naming it, never quoting a secret.
func gateConfig(c *cli.Context) (gate.Config, error) {
	n, err := commitNames(c)
	if err != nil {
		return gate.Config{}, err
	}
	up, err := url.Parse(c.String("upstream"))
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return gate.Config{}, usageErrorf("--upstream must be an http URL of the app, like http://127.0.0.1:8081")
	}
	if _, _, err := net.SplitHostPort(c.String("listen")); err != nil {
		return gate.Config{}, usageErrorf("--listen must be HOST:PORT or :PORT")
	}
	key, err := base64.StdEncoding.DecodeString(os.Getenv(gateKeyVar))
	if err != nil || len(key) < 32 {
		return gate.Config{}, usageErrorf("%s must be base64 of 32 bytes or more (head -c 32 /dev/urandom | base64)", gateKeyVar)
	}
	scheme := c.String("url-scheme")
	if scheme != "http" && scheme != "https" {
		return gate.Config{}, usageErrorf("--url-scheme must be http or https")
	}
	if c.String("login-host") != "" && c.String("domain") == "" {
		return gate.Config{}, usageErrorf("--login-host needs --domain, the base domain of the app's hosts")
	}
	return gate.Config{
		App: n.AppPart, SHA: n.SHA, Upstream: up, Key: key,
		Password: os.Getenv(gatePasswordVar), Bypass: os.Getenv(gateBypassVar),
		Secure: scheme == "https", LoginHost: c.String("login-host"), Domain: c.String("domain"),
	}, nil
}

// serveGate serves h on addr until ctx ends, then drains for 5 s.
func serveGate(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return nil
	}
}
