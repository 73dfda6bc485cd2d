// Command shipper-gate is the gate a protected preview's pod runs in
// front of its app (internal/gate; `shipper gate` is the same command in
// the job image's shipper). It is its own binary so that a preview pays
// for the gate alone: linked without Helm and client-go, it peaks at about
// a third of shipper's memory (docs/benchmarks.md).
//
// Exit codes: 0 stopped by SIGTERM or SIGINT, 1 failed, 2 bad flags or
// secrets.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shipper-dev/shipper/internal/gate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := gate.Main(ctx, "shipper-gate", os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "shipper-gate:", err)
	var bad *gate.UsageError
	if errors.As(err, &bad) {
		os.Exit(2)
	}
	os.Exit(1)
}
