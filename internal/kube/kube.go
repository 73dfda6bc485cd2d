package kube

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options say how to reach the cluster: a kubeconfig (and context), or
// an API URL with a bearer token, as GitLab CI variables give them. A URL
// wins over the kubeconfig; a token given with a kubeconfig replaces its
// credentials. TLS is verified unless Insecure is set.
type Options struct {
	Kubeconfig, Context string
	URL, Token          string
	// CAFile is a PEM file, CAData PEM text (GitLab's KUBE_CA_PEM).
	CAFile, CAData string
	Insecure       bool
	// Log, when set, gets a line for each request retried after a
	// transient failure (retryTransport) and, at debug level, one for each
	// request sent (traceTransport).
	Log *slog.Logger
	// Requests, when set, counts the requests sent.
	Requests *Requests
}

// UsageError is a connection setting that cannot work, found before any
// request. Its BadInput method is the mark the CLI maps to exit code 2,
// shared with internal/release's UsageError and internal/image's
// InputError.
type UsageError struct {
	// Input names the setting ("--kube-url"), Value quotes it and Rule
	// says what a good one looks like.
	Input, Value, Rule string
}

func (e *UsageError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Input, e.Value, e.Rule)
}

// BadInput marks e as the caller's mistake, not the cluster's.
func (e *UsageError) BadInput() bool { return true }

// serviceAccountToken is where a pod's ServiceAccount token is mounted,
// the token file of rest.InClusterConfig.
const serviceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// RESTConfig builds the client configuration. Without a URL or a
// kubeconfig it falls back to the in-cluster service account, then to
// ~/.kube/config, as kubectl does. Bad settings are a *UsageError.
func (o Options) RESTConfig() (*rest.Config, error) {
	var cfg *rest.Config
	if o.URL != "" {
		if _, err := url.ParseRequestURI(o.URL); err != nil {
			// Not shown: a URL that does not parse may still hold user:password@.
			return nil, &UsageError{Input: "--kube-url", Value: "(not shown)", Rule: "must be the API server URL, like https://k8s.example.com:6443"}
		}
		cfg = &rest.Config{Host: o.URL}
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = o.Kubeconfig
		overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
		var err error
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			if o.Kubeconfig == "" && o.Context == "" {
				if in, inErr := rest.InClusterConfig(); inErr == nil {
					cfg, err = in, nil
				}
			}
			if err != nil {
				return nil, &UsageError{Input: "cluster connection", Value: o.Kubeconfig, Rule: "set --kubeconfig (KUBECONFIG) or --kube-url with --kube-token (KUBE_URL, KUBE_TOKEN): " + err.Error()}
			}
		}
	}
	// client-go falls back to the pod's ServiceAccount when there is no
	// kubeconfig (a GitLab Kubernetes executor's job pod): say so.
	if o.Log != nil && o.Token == "" && cfg.BearerTokenFile == serviceAccountToken {
		o.Log.Info("in-cluster configuration: the pod's ServiceAccount", "apiserver", cfg.Host)
	}
	if o.Token != "" {
		cfg.BearerToken, cfg.BearerTokenFile = o.Token, ""
		cfg.Username, cfg.Password = "", ""
		cfg.CertFile, cfg.KeyFile, cfg.CertData, cfg.KeyData = "", "", nil, nil
	}
	if o.CAFile != "" {
		if _, err := os.Stat(o.CAFile); err != nil {
			return nil, &UsageError{Input: "--kube-ca-file", Value: o.CAFile, Rule: "must be a readable PEM file"}
		}
		cfg.CAFile, cfg.CAData = o.CAFile, nil
	}
	if o.CAData != "" && !strings.Contains(o.CAData, "-----BEGIN") {
		// A GitLab variable of type File (KUBE_CA_PEM as the GitLab agent
		// and many setups define it) holds the path of a file with the PEM.
		b, err := os.ReadFile(o.CAData)
		if err != nil {
			return nil, &UsageError{Input: "--kube-ca", Value: "(not PEM text)", Rule: "must be PEM text, or the path of a readable PEM file (a GitLab File variable): " + err.Error()}
		}
		o.CAData = string(b)
	}
	if o.CAData != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(o.CAData)) {
			return nil, &UsageError{Input: "--kube-ca", Value: "(PEM text)", Rule: "must hold at least one PEM certificate"}
		}
		cfg.CAData, cfg.CAFile = []byte(o.CAData), ""
	}
	if o.Insecure {
		cfg.Insecure, cfg.CAData, cfg.CAFile = true, nil, ""
	}
	cfg.UserAgent = "shipper"
	// Innermost the trace, so that each attempt of a retried request is
	// counted and logged (its time on the wire: after firstConn's wait).
	first := newFirstConn()
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &retryTransport{next: first.wrap(&traceTransport{next: rt, count: o.Requests, log: o.Log}), backoff: TransientBackoff, log: o.Log}
	})
	return cfg, nil
}

// Unreachable reports whether err means the cluster could not be reached
// or refused the credentials, rather than an operation failing.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsUnauthorized(err) {
		return true
	}
	var ne net.Error
	var ue *url.Error
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}
