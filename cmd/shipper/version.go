package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/version"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:         "version",
		Usage:        "print shipper's version",
		UsageText:    "shipper version\n\nExample:\n   $ shipper version\n   shipper v0.1.0 (commit 7c77eb3, go1.26.8, linux/amd64)",
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("version takes no arguments, got %q", c.Args().First())}
			}
			_, err := fmt.Fprintln(c.App.Writer, version.Get())
			return err
		},
	}
}
