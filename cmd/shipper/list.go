package main

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the app's deployed commits: SHA, status, age, URL, and which one is live",
		UsageText: `shipper list [--all-apps] [-o json]

Example:
   shipper list --app myapp
   SHA       STATUS    AGE  URL                                   LIVE  ALIAS
   7c77eb36  deployed  5m   https://myapp-7c77eb36.example.com    *     main
   3f9a1c2e  deployed  2h   https://myapp-3f9a1c2e.example.com          feature-login
   # during a canary (promote --weight 10): LIVE "* 90%" and "canary 10%";
   # ALIAS: the branches whose alias (https://myapp--main.example.com) serves it

   shipper list --all-apps    # every app of this project (--project-id), an APP column first`,
		Flags: append(globalFlags(),
			&cli.BoolFlag{Name: "all-apps", Usage: "every app of the project (--project-id; of every project without one), not only --app", EnvVars: []string{"SHIPPER_ALL_APPS"}},
		),
		OnUsageError: onUsageError,
		Action: clusterAction(listNames, func(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error {
			var commits []release.Commit
			var err error
			if c.Bool("all-apps") {
				commits, err = release.NewList(cfg).All(ctx)
			} else {
				commits, err = release.NewList(cfg).Run(ctx, n)
			}
			if err != nil {
				return err
			}
			if commits == nil {
				commits = []release.Commit{}
			}
			return emit(c, commits, table(commits, time.Now(), c.Bool("all-apps")))
		}),
	}
}

// listNames: --app's, unless --all-apps.
func listNames(c *cli.Context) (release.Names, error) {
	if c.Bool("all-apps") {
		return release.Names{}, nil
	}
	return appNames(c)
}

// table formats commits as an aligned table, like kubectl get; with an
// APP column first when they are of several apps.
func table(commits []release.Commit, now time.Time, apps bool) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	if apps {
		fmt.Fprint(tw, "APP\t")
	}
	fmt.Fprintln(tw, "SHA\tSTATUS\tAGE\tURL\tLIVE\tPROTECT\tALIAS")
	for _, cm := range commits {
		if apps {
			fmt.Fprint(tw, cm.App+"\t")
		}
		live := ""
		switch {
		case cm.Live && cm.Weight > 0 && cm.Weight < 100:
			live = fmt.Sprintf("* %d%%", cm.Weight)
		case cm.Live:
			live = "*"
		case cm.Canary:
			live = fmt.Sprintf("canary %d%%", cm.Weight)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cm.Short, cm.Status, release.Age(now, cm.Updated), cm.URL, live, cmp.Or(cm.Protect, "-"), strings.Join(cm.Aliases, ","))
	}
	_ = tw.Flush() // a strings.Builder does not fail
	return b.String()
}
