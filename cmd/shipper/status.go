package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show production (live SHA, revision, since when, and any broken invariant with its repair) or one commit",
		UsageText: `shipper status [--sha SHA] [-o json]

Examples:
   shipper status --app myapp                 # production
   shipper status --app myapp --sha 7c77eb36  # one commit
   # --sha reads no variable: CI_COMMIT_SHORT_SHA would turn every status in a job
   # into the pipeline commit's`,
		Flags:        flags([]cli.Flag{statusSHAFlag()}, databaseFlags(), globalFlags()),
		OnUsageError: onUsageError,
		Action: clusterAction(statusNames, func(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error {
			st := release.NewStatus(cfg)
			if n.SHA != "" {
				cm, err := st.Commit(ctx, n)
				if err != nil {
					return err
				}
				text := fmt.Sprintf("release:  %s\nsha:      %s\nstatus:   %s\nrevision: %d\nupdated:  %s\nurl:      %s\nlive:     %t\n",
					cm.Release, cm.SHA, cm.Status, cm.Revision, cm.Updated.UTC().Format(time.RFC3339), cm.URL, cm.Live)
				if cm.Protect != "" {
					text += fmt.Sprintf("protect:  %s\n", cm.Protect)
				}
				if cm.Ref != "" {
					text += fmt.Sprintf("ref:      %s\n", cm.Ref)
				}
				if len(cm.Aliases) > 0 {
					text += fmt.Sprintf("aliases:  %s\n", strings.Join(cm.Aliases, ", "))
				}
				return emit(c, cm, text)
			}
			p, err := st.Production(ctx, n)
			if err != nil {
				return err
			}
			problems, err := st.Check(ctx, n)
			if err != nil {
				return err
			}
			text := fmt.Sprintf("release:  %s\nlive:     %s (release %s)\n", p.Release, p.SHA, p.Target)
			if p.Canary != nil {
				text = fmt.Sprintf("release:  %s\nlive:     %s (release %s), %d%%\ncanary:   %s (release %s), %d%%\n",
					p.Release, p.SHA, p.Target, 100-p.Canary.Weight, p.Canary.SHA, p.Canary.Target, p.Canary.Weight)
			}
			text += fmt.Sprintf("revision: %d\nsince:    %s\nurl:      %s\n", p.Revision, p.Since.UTC().Format(time.RFC3339), p.URL)
			for _, sha := range p.Sized {
				note := "serves production"
				if sha != p.SHA && (p.Canary == nil || sha != p.Canary.SHA) {
					note = "no longer routed: the next promote or rollback sizes it down"
				}
				text += fmt.Sprintf("sized:    %s at production size (%s)\n", sha, note)
			}
			for _, v := range problems {
				text += fmt.Sprintf("problem:  %s: %s\n          repair: %s\n", v.Invariant, v.Detail, v.Repair)
			}
			return emit(c, struct {
				*release.Production
				Problems []release.Violation `json:"problems,omitempty"`
			}{p, problems}, text)
		}),
	}
}

// statusSHAFlag is --sha without GitLab's variables: in a job,
// CI_COMMIT_SHORT_SHA would always turn status into the pipeline commit's
// status. Without it, status shows production.
func statusSHAFlag() cli.Flag {
	f := shaFlag()
	f.EnvVars = nil
	return f
}

// statusNames are the names of the app, and of --sha when given.
func statusNames(c *cli.Context) (release.Names, error) {
	if c.String("sha") == "" {
		return appNames(c)
	}
	return commitNames(c)
}
