// Package testenv runs a real, throwaway control plane and registry on
// 127.0.0.1 for shipper's integration tests and its local demo: etcd and
// kube-apiserver built from their Go modules by hack/tools.sh, and Debian's
// docker-registry (CNCF distribution) with htpasswd basic auth.
//
// Nothing here is a fake. The apiserver authenticates bearer tokens (a
// static admin token, and ServiceAccount tokens minted through the
// TokenRequest API for least-privileged identities), authorizes with RBAC,
// and serves TLS with a certificate signed by a CA that the Env generates
// and its clients trust.
//
// Data flow:
//
//	Start(ctx, opts) ─┬─ pki: CA, serving cert, ServiceAccount key pair, admin token
//	                  ├─ etcd            (free port, data under Env.Dir)
//	                  ├─ kube-apiserver  (free port, waits for /readyz)
//	                  └─ registry        (free port, htpasswd users, waits for /v2/)
//	Env.Stop()        kills every process and removes Env.Dir.
//
// Every child process gets PR_SET_PDEATHSIG, so a test binary that panics
// or is killed takes its control plane with it; the directory it leaves
// behind is removed by the next Start (see sweepStale).
//
// Env.InstallGatewayAPI applies the Gateway API's CRDs (the version
// Traefik is built against) for tests of HTTPRoutes and ReferenceGrants.
// A real node (Options.Node) has them installed, and Traefik serving the
// Gateway "shipper-gateway/shared" over HTTP and HTTPS beside its Ingress
// entrypoint (Node.GatewayAddr, Node.GatewayTLSAddr, Node.GatewayCA).
//
// StartPostgres (postgres.go) runs Debian's PostgreSQL 15 on its own free
// port, as the postgres user when the tests run as root (initdb refuses
// root), with password (scram-sha-256) logins over TCP; GetPostgres shares
// one per test binary, stopped by Main. Its processes die with the test
// binary as the Env's do, and its reaper removes its directory.
//
// StartBrowser (browser.go) runs Debian's headless Chromium for a test,
// driven through the DevTools protocol (chromedp), with test hosts mapped
// to local listeners; Browser.NewContext gives a tab in a fresh profile.
// Its processes die with the test binary too, and its reaper removes its
// directory; screenshots go to ArtifactsDir.
//
// Tests use one Env per test binary: TestMain calls Main, tests call Get and
// Env.Namespace for namespaces of their own that are deleted when they end.
package testenv
