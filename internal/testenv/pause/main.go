// Command pause is the sandbox ("pause") container of the test node:
// it holds the pod's namespaces and does nothing until it is told to stop.
// No container image can be pulled here, so the harness builds this one.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
