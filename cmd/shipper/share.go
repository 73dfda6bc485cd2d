package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

// maxShareTTL bounds a share link's life: a link is a bearer credential,
// and only rotating the app's key (--revoke-all) ends one early.
const maxShareTTL = 30 * 24 * time.Hour

func shareCommand() *cli.Command {
	return &cli.Command{
		Name:  "share",
		Usage: "print a link that opens a protected preview without a login until it expires; --revoke-all ends every link and session of the app",
		UsageText: `shipper share --sha SHA [--ttl 24h] [-o json]
   shipper share --revoke-all

Examples:
   shipper share --app myapp --sha 7c77eb36 --ttl 48h
   # stdout: https://myapp-7c77eb36.example.com/?shipper-share=v1.c.…
   shipper share --app myapp --revoke-all   # a new key: every link and login of myapp ends`,
		Flags: flags([]cli.Flag{
			shaFlag(),
			&cli.DurationFlag{Name: "ttl", Value: 24 * time.Hour, Usage: "how long the link opens the preview (at most 720h)", EnvVars: []string{"SHIPPER_SHARE_TTL"}},
			&cli.BoolFlag{Name: "revoke-all", Usage: "give the app a new gate key instead: every share link and every login of the app ends (within a minute)"},
		}, globalFlags()),
		OnUsageError: onUsageError,
		Action: clusterAction(shareNames, func(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error {
			if c.Bool("revoke-all") {
				if err := cfg.RotateGateKey(ctx, n); err != nil {
					return err
				}
				logger(c).Info("the app's gate key is new: every share link and login of the app ends", "app", n.AppPart)
				return emit(c, map[string]string{"app": n.AppPart, "revoked": "all"}, "")
			}
			ttl := c.Duration("ttl")
			if ttl <= 0 || ttl > maxShareTTL {
				return usageErrorf("--ttl must be more than 0 and at most 720h, got %s", ttl)
			}
			cm, err := release.NewStatus(cfg).Commit(ctx, n)
			if err != nil {
				return err
			}
			if cm.Protect == "" || cm.Protect == string(release.ProtectNone) {
				return &release.UsageError{Input: "commit", Value: n.Short, Rule: "is not protected: its URL " + cm.URL + " opens without a link"}
			}
			until := time.Now().Add(ttl).Truncate(time.Second)
			link, err := cfg.ShareLink(ctx, n, cm.URL, until)
			if err != nil {
				return err
			}
			return emit(c, map[string]string{"url": link, "expires": until.UTC().Format(time.RFC3339)}, fmt.Sprintln(link))
		}),
	}
}

// shareNames: the app alone for --revoke-all, else a commit.
func shareNames(c *cli.Context) (release.Names, error) {
	if c.Bool("revoke-all") {
		return appNames(c)
	}
	return commitNames(c)
}
