package gate

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"time"
)

// The gate's command line, one parser for both of its entry points: `shipper
// gate` (the job image's binary, to try it) and shipper-gate (cmd/shipper-gate,
// the sidecar a protected preview's pod runs: a binary of this package alone
// peaks at a third of the memory of one with Helm and client-go linked in).

// Secrets come from the environment or from files, never from flags: a
// flag is visible in the process list.
const (
	KeyVar      = "SHIPPER_GATE_KEY"
	PasswordVar = "SHIPPER_PREVIEW_PASSWORD"
	BypassVar   = "SHIPPER_PROTECTION_BYPASS"
)

// The files of --secrets-dir: a mounted Secret's keys (release's gate
// Secret writes these).
const (
	KeyFile      = "key"
	PasswordFile = "password"
	BypassFile   = "bypass"
	// OIDCSecretFile is the client secret of --oidc-issuer (read at
	// start: a new one takes a restart of the gate).
	OIDCSecretFile = "oidc-client-secret"
)

// reloadEvery is how often a gate with --secrets-dir reads its files
// again: the kubelet updates a mounted Secret within about a minute of a
// change, and a new password or key then ends every session.
var reloadEvery = 5 * time.Second

// UsageError is a bad flag or secret of the gate's command line; BadInput
// marks it for the CLI's exit code 2. It never quotes a secret.
type UsageError struct{ msg string }

func (e *UsageError) Error() string  { return e.msg }
func (e *UsageError) BadInput() bool { return true }

func usagef(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// Usage is the command line's synopsis and example, for both entry points'
// help.
const Usage = `[--listen ADDR] [--public-listen ADDR] [--upstream URL] --app APP --sha SHA [--login-host HOST --domain DOMAIN] [--secrets-dir DIR]

Secrets from the environment (` + KeyVar + `: base64, 32 bytes or more, signs sessions and share links; ` +
	PasswordVar + `: the login page's password, none: share links only; ` + BypassVar + `: header X-Shipper-Bypass for automation), ` +
	`or from the files key, password and bypass of --secrets-dir (a mounted Secret, read again every 5 s).

Example:
   $ SHIPPER_GATE_KEY=$(head -c 32 /dev/urandom | base64) SHIPPER_PREVIEW_PASSWORD=s3cret \
       shipper gate --app myapp --sha 7c77eb36 --upstream http://127.0.0.1:8081 --url-scheme http`

// options are the parsed flags.
type options struct {
	listen, publicListen, upstream, app, sha, loginHost, domain, scheme, secretsDir string
	oidc                                                                            oidcOptions
}

// FlagSet is the gate's flags on fs, parsed into the returned options.
func flagSet(name string, getenv func(string) string) (*flag.FlagSet, *options) {
	o := &options{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&o.listen, "listen", env("SHIPPER_GATE_LISTEN", ":8080"), "address the gate serves on (the Service's target) [$SHIPPER_GATE_LISTEN]")
	fs.StringVar(&o.publicListen, "public-listen", "", "also serve here without a login (the port production's route targets while only previews are protected); the gate's own paths stay")
	fs.StringVar(&o.upstream, "upstream", env("SHIPPER_GATE_UPSTREAM", "http://127.0.0.1:8081"), "the app, on loopback in the same pod [$SHIPPER_GATE_UPSTREAM]")
	fs.StringVar(&o.app, "app", "", "the app the gate guards")
	fs.StringVar(&o.sha, "sha", "", "the commit the gate guards (share links name it)")
	fs.StringVar(&o.loginHost, "login-host", env("SHIPPER_GATE_LOGIN_HOST", ""), "the app's host where logins happen (its production host): one login then opens every preview [$SHIPPER_GATE_LOGIN_HOST]")
	fs.StringVar(&o.domain, "domain", env("SHIPPER_DOMAIN", ""), "base domain of the app's hosts (with --login-host) [$SHIPPER_DOMAIN]")
	fs.StringVar(&o.scheme, "url-scheme", env("SHIPPER_URL_SCHEME", "https"), "scheme of the app's hosts: https makes cookies Secure and __Host- [$SHIPPER_URL_SCHEME]")
	fs.StringVar(&o.secretsDir, "secrets-dir", "", "read the key, password and bypass from these files (a mounted Secret), again every 5 s")
	o.oidc.register(fs, getenv)
	return fs, o
}

var shaPattern = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

// config checks o and the secrets, and returns the gate's Config.
func (o *options) config(secrets secrets) (Config, error) {
	if o.app == "" {
		return Config{}, usagef("--app is required: the app the gate guards")
	}
	if !shaPattern.MatchString(o.sha) {
		return Config{}, usagef("--sha must be the commit SHA (7 to 40 lowercase hex characters)")
	}
	up, err := url.Parse(o.upstream)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return Config{}, usagef("--upstream must be an http URL of the app, like http://127.0.0.1:8081")
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return Config{}, usagef("--listen must be HOST:PORT or :PORT")
	}
	if _, _, err := net.SplitHostPort(o.publicListen); o.publicListen != "" && err != nil {
		return Config{}, usagef("--public-listen must be HOST:PORT or :PORT")
	}
	if o.scheme != "http" && o.scheme != "https" {
		return Config{}, usagef("--url-scheme must be http or https")
	}
	if o.loginHost != "" && o.domain == "" {
		return Config{}, usagef("--login-host needs --domain, the base domain of the app's hosts")
	}
	if len(secrets.key) < 32 {
		return Config{}, usagef("%s (or the file %s of --secrets-dir) must hold 32 bytes or more (head -c 32 /dev/urandom | base64)", KeyVar, KeyFile)
	}
	return Config{
		App: o.app, SHA: o.sha, Upstream: up, Key: secrets.key, Password: secrets.password, Bypass: secrets.bypass,
		Secure: o.scheme == "https", LoginHost: o.loginHost, Domain: o.domain,
	}, nil
}

type secrets struct {
	key              []byte
	password, bypass string
}

func (s secrets) equal(t secrets) bool {
	return bytes.Equal(s.key, t.key) && s.password == t.password && s.bypass == t.bypass
}

// envSecrets reads the secrets from the environment: the key in base64.
func envSecrets(getenv func(string) string) (secrets, error) {
	key, err := base64.StdEncoding.DecodeString(getenv(KeyVar))
	if err != nil || len(key) < 32 {
		return secrets{}, usagef("%s must be base64 of 32 bytes or more (head -c 32 /dev/urandom | base64)", KeyVar)
	}
	return secrets{key: key, password: getenv(PasswordVar), bypass: getenv(BypassVar)}, nil
}

// fileSecrets reads the secrets from dir: the key as raw bytes, as a
// Secret's data mounts it; a missing password or bypass file is none.
func fileSecrets(dir string) (secrets, error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) && name != KeyFile {
			return "", nil
		}
		return string(b), err
	}
	key, err := read(KeyFile)
	if err != nil {
		return secrets{}, usagef("--secrets-dir %s: cannot read the file %s: mount the gate's Secret there", dir, KeyFile)
	}
	pw, err := read(PasswordFile)
	if err != nil {
		return secrets{}, err
	}
	bypass, err := read(BypassFile)
	if err != nil {
		return secrets{}, err
	}
	return secrets{key: []byte(key), password: pw, bypass: bypass}, nil
}

// CheckFlags reports whether args are flags Main takes (the docs'
// examples' check), without reading secrets or listening.
func CheckFlags(args []string) error {
	fs, _ := flagSet("gate", func(string) string { return "" })
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("gate takes no arguments, got %q", fs.Arg(0))
	}
	return nil
}

// Main runs the gate named name with args (flags only) until ctx ends:
// -h prints its help to stdout; its log goes to stderr. A bad flag or
// secret is a *UsageError, returned before it listens.
func Main(ctx context.Context, name string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, o := flagSet(name, getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage: %s %s\n\nFlags:\n", name, Usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		// The flag package quotes the value it could not parse; none of
		// the gate's flags is a secret, but its message names the flag.
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("gate takes no arguments, got %q", fs.Arg(0))
	}
	load := func() (secrets, error) { return envSecrets(getenv) }
	if o.secretsDir != "" {
		load = func() (secrets, error) { return fileSecrets(o.secretsDir) }
	}
	s, err := load()
	if err != nil {
		return err
	}
	cfg, err := o.config(s)
	if err != nil {
		return err
	}
	oidcEnv := getenv
	if o.secretsDir != "" {
		oidcEnv = func(k string) string {
			if k != OIDCSecretVar {
				return getenv(k)
			}
			b, err := os.ReadFile(filepath.Join(o.secretsDir, OIDCSecretFile))
			if err != nil {
				return getenv(k)
			}
			return string(b)
		}
	}
	if cfg.OIDC, err = o.oidc.config(oidcEnv); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Log = log
	g, err := New(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	h := &swapHandler{}
	h.cur.Store(g)
	if o.secretsDir != "" {
		go h.reload(ctx, load, s, log)
	}
	if o.publicListen == "" {
		return serve(ctx, o.listen, h)
	}
	errc := make(chan error, 2)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { errc <- serve(ctx, o.listen, h) }()
	go func() { errc <- serve(ctx, o.publicListen, http.HandlerFunc(h.ServePublic)) }()
	err = <-errc // the first to stop (an error, or ctx) stops the other
	cancel()
	return errors.Join(err, <-errc)
}

// swapHandler serves with the newest Gate, which reload replaces when
// the secrets change.
type swapHandler struct{ cur atomic.Pointer[Gate] }

func (h *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.cur.Load().ServeHTTP(w, r)
}

// ServePublic is the public listener's handler.
func (h *swapHandler) ServePublic(w http.ResponseWriter, r *http.Request) {
	h.cur.Load().ServePublic(w, r)
}

// reload reads the secrets every reloadEvery and, when they changed,
// serves with them (Gate.withSecrets): every session and share link of
// an old key or password then ends. A read that fails, or secrets that
// cannot be used, keep the current ones.
func (h *swapHandler) reload(ctx context.Context, load func() (secrets, error), last secrets, log *slog.Logger) {
	t := time.NewTicker(reloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, err := load()
		if err != nil || s.equal(last) {
			continue
		}
		g, err := h.cur.Load().withSecrets(s.key, s.password, s.bypass)
		if err != nil {
			log.Warn("the gate's secrets changed but cannot be used: keeping the previous ones", "error", err)
			continue
		}
		h.cur.Store(g)
		last = s
		log.Info("the gate's secrets changed: sessions and share links of the previous ones have ended")
	}
}

// serve serves h on addr until ctx ends, then drains for 5 s.
func serve(ctx context.Context, addr string, h http.Handler) error {
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
