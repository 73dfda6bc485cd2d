package main

import (
	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/version"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:         "version",
		Usage:        "print shipper's version",
		UsageText:    "shipper version [-o json]\n\nExample:\n   $ shipper version\n   shipper v0.1.0 (commit 7c77eb3, go1.26.8, linux/amd64)",
		Flags:        []cli.Flag{outputFlag()},
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("version takes no arguments, got %q", c.Args().First())
			}
			v := version.Get()
			return emit(c, v, v.String()+"\n")
		},
	}
}
