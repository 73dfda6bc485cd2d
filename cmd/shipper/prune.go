package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove previews by retention policy (never the live commit, a canary, an aliased or a locked one), and the aliases of deleted branches",
		UsageText: `shipper prune [--keep N] [--max-age DURATION] [--branch-exists LIST | --branch-exists-file FILE] [--dry-run] [-o json]

A commit goes when any policy removes it and nothing protects it.

Examples:
   shipper prune --app myapp --keep 5 --max-age 168h --dry-run
   git ls-remote --heads origin > branches.txt
   shipper prune --app myapp --keep 3 --branch-exists-file branches.txt`,
		Flags: flags([]cli.Flag{
			&cli.IntFlag{Name: "keep", Usage: "keep the N newest commits of each branch (by commit time); 0: off", EnvVars: []string{"SHIPPER_PRUNE_KEEP"}},
			&cli.DurationFlag{Name: "max-age", Usage: "remove commits last deployed longer ago than this (e.g. 168h); 0: off", EnvVars: []string{"SHIPPER_PRUNE_MAX_AGE"}},
			&cli.StringSliceFlag{Name: "branch-exists", Usage: "the branches that exist, comma-separated (repeatable): commits of any other branch go"},
			&cli.StringFlag{Name: "branch-exists-file", Usage: "the same, one per line, or the output of git ls-remote --heads (- for stdin)", EnvVars: []string{"SHIPPER_BRANCH_EXISTS_FILE"}},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and change nothing", EnvVars: []string{"SHIPPER_DRY_RUN"}},
			&cli.IntFlag{Name: "parallel", Value: 8, Usage: "removals at once", EnvVars: []string{"SHIPPER_PRUNE_PARALLEL"}},
		}, databaseFlags(), globalFlags()),
		OnUsageError: onUsageError,
		Action: clusterAction(appNames, func(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error {
			p := release.NewPrune(cfg)
			p.Keep, p.MaxAge, p.DryRun, p.Parallel = c.Int("keep"), c.Duration("max-age"), c.Bool("dry-run"), c.Int("parallel")
			branches, err := branchList(c)
			if err != nil {
				return err
			}
			p.Branches = branches
			log := logger(c)
			p.Progress = func(done, total int, it release.PruneItem) {
				if it.Error != "" {
					log.Warn("could not remove", "release", it.Release, "progress", fmt.Sprintf("%d/%d", done, total), "error", it.Error)
					return
				}
				log.Info(it.Action, "release", it.Release, "progress", fmt.Sprintf("%d/%d", done, total))
			}
			res, err := p.Run(ctx, n)
			if res != nil {
				if eerr := emit(c, res, pruneTable(res, time.Now())); eerr != nil {
					return eerr
				}
			}
			return err
		}),
	}
}

// branchList is --branch-exists and --branch-exists-file together, nil
// when neither is given (the policy is off).
func branchList(c *cli.Context) ([]string, error) {
	if !c.IsSet("branch-exists") && c.String("branch-exists-file") == "" {
		return nil, nil
	}
	out := []string{}
	for _, item := range c.StringSlice("branch-exists") {
		for _, b := range strings.Split(item, ",") {
			if b = strings.TrimSpace(b); b != "" {
				out = append(out, b)
			}
		}
	}
	path := c.String("branch-exists-file")
	if path == "" {
		return out, nil
	}
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, usageErrorf("--branch-exists-file %s: %v: give the file `git ls-remote --heads origin` wrote", path, err)
		}
		defer f.Close()
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.LastIndexAny(line, " \t"); i >= 0 {
			line = line[i+1:] // "<sha>\trefs/heads/<name>"
		}
		if line = strings.TrimPrefix(line, "refs/heads/"); line != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading --branch-exists-file %s: %w", path, err)
	}
	return out, nil
}

// pruneTable is the plan and its outcome, one commit a line.
func pruneTable(res *release.Pruned, now time.Time) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tSHA\tREF\tAGE\tACTION\tREASON")
	for _, it := range res.Items {
		reason := it.Reason
		if it.Error != "" {
			reason += ": " + it.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Kind, it.Short, it.Ref, release.Age(now, it.Updated), it.Action, reason)
	}
	_ = tw.Flush()
	if res.DryRun {
		fmt.Fprintln(&b, "dry run: nothing was changed")
	} else {
		fmt.Fprintf(&b, "%d deleted, %d failed\n", res.Deleted, res.Failed)
	}
	return b.String()
}
