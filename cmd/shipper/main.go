// Command shipper builds a commit into an OCI image, deploys it as its own
// Helm release for a preview URL, and promotes a chosen commit to production.
// This package only wires flags to internal/release and internal/image.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/shipper-dev/shipper/internal/hugeheap" // first: see its doc
	_ "github.com/shipper-dev/shipper/internal/startgc"  // then this: see its doc
)

func main() {
	// GitLab cancels a job with SIGTERM: cancel the context so operations
	// can stop cleanly instead of being killed mid-way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
