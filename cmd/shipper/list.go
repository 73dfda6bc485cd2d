package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the app's deployed commits: SHA, status, age, URL, and which one is live",
		UsageText: `shipper list [-o json]

Example:
   shipper list --app myapp
   SHA       STATUS    AGE  URL                                   LIVE
   7c77eb36  deployed  5m   https://myapp-7c77eb36.example.com    *
   3f9a1c2e  deployed  2h   https://myapp-3f9a1c2e.example.com`,
		Flags:        globalFlags(),
		OnUsageError: onUsageError,
		Action: clusterAction(func(ctx context.Context, c *cli.Context, cfg *release.Configuration, appName string) error {
			commits, err := release.NewList(cfg).Run(ctx, appName)
			if err != nil {
				return err
			}
			if jsonOutput(c) {
				if commits == nil {
					commits = []release.Commit{}
				}
				return printJSON(c, commits)
			}
			return printTable(c, commits, time.Now())
		}),
	}
}

// printTable writes commits as an aligned table, like kubectl get.
func printTable(c *cli.Context, commits []release.Commit, now time.Time) error {
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHA\tSTATUS\tAGE\tURL\tLIVE")
	for _, cm := range commits {
		live := ""
		if cm.Live {
			live = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cm.Short, cm.Status, release.Age(now, cm.Updated), cm.URL, live)
	}
	return tw.Flush()
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show production (live SHA, revision, since when) or one commit",
		UsageText: `shipper status [--sha SHA] [-o json]

Examples:
   shipper status --app myapp                 # production
   shipper status --app myapp --sha 7c77eb36  # one commit`,
		Flags:        append([]cli.Flag{&cli.StringFlag{Name: "sha", Usage: "a commit instead of production"}}, globalFlags()...),
		OnUsageError: onUsageError,
		Action: clusterAction(func(ctx context.Context, c *cli.Context, cfg *release.Configuration, appName string) error {
			return printStatus(ctx, c, release.NewStatus(cfg), appName)
		}),
	}
}

func printStatus(ctx context.Context, c *cli.Context, st *release.Status, appName string) error {
	w := c.App.Writer
	if sha := c.String("sha"); sha != "" {
		cm, err := st.Commit(ctx, appName, sha)
		if err != nil {
			return err
		}
		if jsonOutput(c) {
			return printJSON(c, cm)
		}
		_, err = fmt.Fprintf(w, "release:  %s\nsha:      %s\nstatus:   %s\nrevision: %d\nupdated:  %s\nurl:      %s\nlive:     %t\n",
			cm.Release, cm.SHA, cm.Status, cm.Revision, cm.Updated.UTC().Format(time.RFC3339), cm.URL, cm.Live)
		return err
	}
	p, err := st.Production(ctx, appName)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(c, p)
	}
	_, err = fmt.Fprintf(w, "release:  %s\nlive:     %s (release %s)\nrevision: %d\nsince:    %s\nurl:      %s\n",
		p.Release, p.SHA, p.Target, p.Revision, p.Since.UTC().Format(time.RFC3339), p.URL)
	return err
}

func renderCommand() *cli.Command {
	return &cli.Command{
		Name:  "render",
		Usage: "print the manifests deploy (or promote, with --production) would apply; needs no cluster",
		UsageText: `shipper render --sha SHA --domain DOMAIN [--image REF] [--production]

Example:
   shipper render --app myapp --sha 7c77eb36 --domain example.com \
     --image registry.example.com/group/myapp:7c77eb36 --set replicaCount=2`,
		Flags: append(append([]cli.Flag{
			shaFlag(), fullSHAFlag(),
			&cli.StringFlag{Name: "image", Usage: "image reference (default $CI_REGISTRY_IMAGE:<short sha>)", EnvVars: []string{"SHIPPER_IMAGE_REF"}},
			&cli.StringFlag{Name: "repository", Usage: "repository the default image is in", EnvVars: []string{"SHIPPER_IMAGE", "CI_REGISTRY_IMAGE"}},
			&cli.StringFlag{Name: "host", Usage: "the host, or a template with {app}, {sha}, {domain}"},
			&cli.BoolFlag{Name: "production", Usage: "render the production release instead of the commit's"},
			&cli.BoolFlag{Name: "pull-secret", Usage: "render as if pull credentials were given"},
		}, chartFlags()...), globalFlags()...),
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			appName, err := app(c)
			if err != nil {
				return err
			}
			sha, err := commitSHA(c)
			if err != nil {
				return err
			}
			n, err := release.NewNames(appName, sha)
			if err != nil {
				return usageError{err}
			}
			vals, err := chartValues(c)
			if err != nil {
				return usageError{err}
			}
			ch, err := release.LoadChart(release.ChartSource{Ref: c.String("chart")})
			if err != nil {
				return releaseError(err)
			}
			r := &release.Render{Chart: ch, Hosts: hosts(c, c.Bool("production")), Values: vals}
			if c.Bool("pull-secret") {
				r.PullSecret = release.PullSecretName
			}
			var out string
			if c.Bool("production") {
				out, err = r.Production(c.Context, n)
			} else {
				ref := c.String("image")
				if ref == "" && c.String("repository") != "" {
					ref = c.String("repository") + ":" + n.Short
				}
				out, err = r.Preview(c.Context, n, ref)
			}
			if err != nil {
				return releaseError(err)
			}
			_, err = fmt.Fprint(c.App.Writer, out)
			return err
		},
	}
}
