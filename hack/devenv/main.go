// Command devenv brings up shipper's local control plane and registry (the
// same internal/testenv the integration tests use), prints how to reach
// them, and keeps them up until interrupted: `make devenv`. With --node it
// adds the real node (kubelet, containerd, Traefik). `make demo` runs the
// whole pipeline instead.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/term"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "devenv:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	start := time.Now()
	node := len(os.Args) > 1 && os.Args[1] == "--node"
	env, err := testenv.Start(ctx, testenv.Options{Node: node})
	if err != nil {
		return err
	}
	defer env.Stop()
	fmt.Printf("control plane and registry ready in %.1fs\n", time.Since(start).Seconds())

	cs, err := env.AdminClient()
	if err != nil {
		return err
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return err
	}
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("kube-apiserver %s at %s, %d namespaces\n", v.GitVersion, env.AdminConfig().Host, len(nss.Items))

	// Credentials go to a 0600 file, never to the terminal.
	creds := filepath.Join(env.Dir, "registry-credentials")
	r := env.Registry
	if err := os.WriteFile(creds, []byte("REGISTRY="+r.Host+"\nREGISTRY_USER="+r.Username+"\nREGISTRY_PASSWORD="+r.Password+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Printf("registry http://%s (basic auth; credentials in %s)\n", r.Host, creds)
	if env.Node != nil {
		fmt.Printf("node %s ready (%s), ingress http://%s\n", testenv.NodeName, env.Node.IP, env.Node.IngressAddr)
	}
	fmt.Printf("\nexport KUBECONFIG=%s\n", env.Kubeconfig)

	if !term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Println("\nstdin is not a terminal: stopping now.")
		return nil
	}
	fmt.Println("\nrunning until Ctrl-C; everything is removed on exit.")
	<-ctx.Done()
	return nil
}
