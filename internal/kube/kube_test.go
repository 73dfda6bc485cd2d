package kube

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestKubeCAFromPEMOrFile: KUBE_CA_PEM is PEM text, or (a GitLab variable
// of type File) the path of a file holding it; anything else is refused.
func TestKubeCAFromPEMOrFile(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	file := filepath.Join(t.TempDir(), "KUBE_CA_PEM")
	if err := os.WriteFile(file, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ca := range []string{pemText, file} {
		cfg, err := Options{URL: "https://k8s.example.com:6443", CAData: ca}.RESTConfig()
		if err != nil {
			t.Errorf("CA %.20q: %v", ca, err)
		} else if string(cfg.CAData) != pemText {
			t.Errorf("CA %.20q: CAData %.30q, want the PEM", ca, cfg.CAData)
		}
	}
	for _, bad := range []string{"not a certificate", filepath.Join(t.TempDir(), "missing")} {
		if _, err := (Options{URL: "https://k8s.example.com:6443", CAData: bad}).RESTConfig(); !isUsage(err) {
			t.Errorf("CA %q: %v, want a usage error", bad, err)
		}
	}
}

// TestKubeContextAndCAFile: KUBE_CONTEXT picks a context of the kubeconfig
// (the GitLab agent for Kubernetes writes one per agent), and
// KUBE_CA_PEM_FILE names the CA file; a missing CA file is bad input.
func TestKubeContextAndCAFile(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "config")
	err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example.com:6443"}
- name: b
  cluster: {server: "https://b.example.com:6443"}
users:
- name: u
  user: {token: "not-shown"}
contexts:
- name: group/project:agent-a
  context: {cluster: a, user: u}
- name: group/project:agent-b
  context: {cluster: b, user: u}
current-context: group/project:agent-a
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for ctx, host := range map[string]string{"": "https://a.example.com:6443", "group/project:agent-b": "https://b.example.com:6443"} {
		cfg, err := Options{Kubeconfig: kubeconfig, Context: ctx}.RESTConfig()
		if err != nil {
			t.Errorf("context %q: %v", ctx, err)
		} else if cfg.Host != host {
			t.Errorf("context %q: host %s, want %s", ctx, cfg.Host, host)
		}
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Options{Kubeconfig: kubeconfig, CAFile: ca}.RESTConfig()
	if err != nil || cfg.CAFile != ca {
		t.Errorf("CA file: %v, %+v", err, cfg)
	}
	if _, err := (Options{Kubeconfig: kubeconfig, CAFile: filepath.Join(dir, "missing")}).RESTConfig(); !isUsage(err) {
		t.Errorf("missing CA file: %v, want a usage error", err)
	}
}

func isUsage(err error) bool {
	var ue *UsageError
	return errors.As(err, &ue)
}
