package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/gate"
)

// The gate's secrets, from the environment only (gate.Main reads them).
const (
	gateKeyVar      = gate.KeyVar
	gatePasswordVar = gate.PasswordVar
	gateBypassVar   = gate.BypassVar
)

// gateCommand is `shipper gate`: internal/gate's own command line (one
// parser for it and for cmd/shipper-gate, the sidecar's small binary).
func gateCommand() *cli.Command {
	return &cli.Command{
		Name:            "gate",
		Usage:           "protect a preview: run in its pod, in front of the app, letting in only a login, a share link or the automation bypass (the sidecar runs shipper-gate, the same command)",
		UsageText:       "shipper gate " + gate.Usage,
		SkipFlagParsing: true,
		OnUsageError:    onUsageError,
		Action: func(c *cli.Context) error {
			return gate.Main(c.Context, "shipper gate", c.Args().Slice(), os.Getenv, c.App.Writer, c.App.ErrWriter)
		},
	}
}
