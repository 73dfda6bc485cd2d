package release

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Prune removes an app's previews by retention policy, as a scheduled
// pipeline or a person runs it (werf's cleanup policies, Vercel's
// deployment retention).
//
//	plan     readApp (namespaces, record labels, production, aliases) ->
//	         each commit: the policies that remove it, else kept; then
//	         what protects it: live, canary, an alias serves it, its Lease
//	         held by a running job
//	execute  the aliases of branches that no longer exist (--branch-exists),
//	         each under its Lease; then the commits, Parallel at a time,
//	         each through Delete's own path under the commit's Lease, which
//	         first checks that the commit's newest revision is still the one
//	         planned (a deploy since: kept) and then refuses a live, canary
//	         or aliased commit as `shipper delete` does (kept, with why).
//	         Production's Lease is not taken: every operation that could
//	         make the commit live or aliased (promote, rollback, an alias
//	         move) takes the commit's Lease and checks it is deployed, so a
//	         running promote never waits for a prune.
//
// The policies combine as a union: a commit goes when any policy removes
// it and nothing protects it; an alias protects its commit unless its
// branch no longer exists, in which case the alias goes too. A namespace a
// failed or cancelled deploy left
// (no release record, a pending one, no RoleBinding yet) is a commit like
// any other: Delete binds its role first and repairs a pending record.
type Prune struct {
	cfg *Configuration

	// Keep, when above 0, keeps the Keep newest commits of each branch
	// (by commit time, else first deploy); older ones go. Commits deployed
	// without a branch form one group of their own.
	Keep int
	// MaxAge, when set, removes commits last deployed longer ago.
	MaxAge time.Duration
	// Branches, when not nil, is every branch that exists (slugs or names:
	// `git ls-remote --heads origin`): commits of any other branch go.
	// Commits deployed without a branch are not judged by it.
	Branches []string
	// DryRun plans and changes nothing.
	DryRun bool
	// Parallel bounds the removals running at once (default 8).
	Parallel int
	// Progress, when set, is called after each removal.
	Progress func(done, total int, item PruneItem)

	now func() time.Time
}

// NewPrune returns a Prune with no policy: it removes nothing until one
// is set.
func NewPrune(cfg *Configuration) *Prune { return &Prune{cfg: cfg, Parallel: 8, now: time.Now} }

// PruneItem is one commit in a prune plan and what became of it.
type PruneItem struct {
	// Kind is "commit", or "alias" for a branch alias (Release), which
	// serves the commit Short, or "database" for a commit's database left
	// without its namespace (database.go).
	Kind    string    `json:"kind"`
	Short   string    `json:"sha"`
	Release string    `json:"release"`
	Ref     string    `json:"ref,omitempty"`
	Updated time.Time `json:"updated"`
	// Action is "delete" or "keep"; after Run, "deleted" or "failed" for
	// the ones planned for deletion.
	Action string `json:"action"`
	// Reason says which policy removes it, or what keeps it.
	Reason string `json:"reason"`
	Error  string `json:"error,omitempty"`

	version int // the newest revision planned against (0: none)
}

// Pruned is a prune's plan, with the outcome of each removal.
type Pruned struct {
	Items   []PruneItem `json:"items"`
	Deleted int         `json:"deleted"`
	Failed  int         `json:"failed"`
	DryRun  bool        `json:"dryRun,omitempty"`
}

// ErrPruneFailed marks a prune in which some removals failed: the others
// ran to their end, and Pruned says which failed and why.
var ErrPruneFailed = errors.New("some previews could not be removed")

// Run plans the prune of n's app and, unless DryRun, carries it out. It
// returns the plan with outcomes; when a removal failed the error wraps
// ErrPruneFailed.
func (p *Prune) Run(ctx context.Context, n Names) (*Pruned, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if err := p.cfg.beginApp(ctx, n); err != nil {
		return nil, err
	}
	items, err := p.plan(ctx, n)
	if err != nil {
		return nil, err
	}
	out := &Pruned{Items: items, DryRun: p.DryRun}
	var doomed []int
	for i, it := range items {
		if it.Action == "delete" && it.Kind == "commit" {
			doomed = append(doomed, i)
		}
	}
	if p.DryRun {
		return out, nil
	}
	for i := range out.Items {
		if it := &out.Items[i]; it.Action == "delete" && it.Kind == "alias" {
			p.record(out, it, p.cfg.locker.Do(ctx, n.ProductionNamespace, it.Release, func(ctx context.Context) error {
				_, err := p.cfg.uninstallAlias(ctx, n, servingAlias{Release: it.Release, Ref: it.Ref})
				return err
			}))
		}
	}
	if err := p.remove(ctx, n, out, doomed); err != nil {
		return out, err
	}
	p.dropDatabases(ctx, n, out)
	if out.Failed > 0 {
		return out, fmt.Errorf("%w: %d of %d removals failed (listed with their errors)", ErrPruneFailed, out.Failed, out.Failed+out.Deleted)
	}
	return out, nil
}

func (p *Prune) validate() error {
	if p.Keep < 0 {
		return &UsageError{Input: "--keep", Value: strconv.Itoa(p.Keep), Rule: "must be 1 or more (0 turns the policy off)"}
	}
	if p.MaxAge < 0 {
		return &UsageError{Input: "--max-age", Value: p.MaxAge.String(), Rule: "must be a positive duration, like 168h"}
	}
	if p.Branches != nil && len(p.Branches) == 0 {
		// An empty list is what a failed `git ls-remote` gives: taken
		// at its word it would remove every branch's previews.
		return &UsageError{Input: "--branch-exists", Value: "", Rule: "names no branch: it would remove every branch's previews and aliases; check the command that lists them"}
	}
	if p.Keep == 0 && p.MaxAge == 0 && p.Branches == nil {
		return &UsageError{Input: "policy", Value: "", Rule: "none given: set --keep, --max-age or --branch-exists (prune removes nothing without one)"}
	}
	return nil
}

// plan decides for each of the app's commits, newest first.
func (p *Prune) plan(ctx context.Context, n Names) ([]PruneItem, error) {
	app, err := p.cfg.readApp(ctx, n)
	if err != nil {
		return nil, err
	}
	now := p.now()
	branches := map[string]bool{}
	for _, b := range p.Branches {
		branches[RefSlug(b)] = true
	}
	type commit struct {
		item PruneItem
		when time.Time // commit time, else first deploy: the branch order
	}
	var commits []commit
	for _, ns := range app.namespaces {
		if ns.DeletionTimestamp != nil {
			continue
		}
		c := commit{item: PruneItem{Kind: "commit", Short: ns.Labels[LabelSHA], Release: ns.Name, Ref: ns.Labels[LabelRef], Updated: ns.CreationTimestamp.Time}}
		if r, ok := app.latest[ns.Name]; ok {
			c.item.Updated, c.item.version = r.Created, r.Version
		}
		c.when = commitTimeOf(&ns)
		commits = append(commits, c)
	}
	sort.Slice(commits, func(i, j int) bool {
		if !commits[i].when.Equal(commits[j].when) {
			return commits[i].when.After(commits[j].when)
		}
		return commits[i].item.Release < commits[j].item.Release
	})
	// The aliases of branches that no longer exist go, and protect nothing.
	gone := func(ref string) bool { return p.Branches != nil && ref != "" && !branches[ref] }
	var out []PruneItem
	protected := map[string]string{} // commit -> the first branch whose alias serves it
	for _, r := range app.aliases {
		if gone(r.Ref) {
			out = append(out, PruneItem{Kind: "alias", Short: r.SHA, Release: r.Name, Ref: r.Ref, Updated: r.Created,
				Action: "delete", Reason: "alias of branch " + r.Ref + ", which no longer exists"})
			continue
		}
		if cur, ok := protected[r.SHA]; !ok || r.Ref < cur {
			protected[r.SHA] = r.Ref
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Release < out[j].Release })
	rank := map[string]int{} // per branch, 1 = newest
	var live record
	if app.live != nil {
		live = *app.live
	}
	for _, c := range commits {
		it := c.item
		rank[it.Ref]++
		branch := cmp.Or(it.Ref, "(no branch)")
		switch {
		case gone(it.Ref):
			it.Action, it.Reason = "delete", "branch "+it.Ref+" no longer exists"
		case p.Keep > 0 && rank[it.Ref] > p.Keep:
			it.Action, it.Reason = "delete", fmt.Sprintf("not among the %d newest of %s", p.Keep, branch)
		case p.MaxAge > 0 && now.Sub(it.Updated) > p.MaxAge:
			it.Action, it.Reason = "delete", fmt.Sprintf("last deployed %s ago, over %s", Age(now, it.Updated), p.MaxAge)
		default:
			it.Action, it.Reason = "keep", "within every policy"
		}
		if it.Action == "delete" {
			switch ref, aliased := protected[it.Short]; {
			case live.SHA != "" && it.Short == live.SHA:
				it.Action, it.Reason = "keep", "live in production"
			case live.Canary != "" && it.Short == live.Canary:
				it.Action, it.Reason = "keep", "canary in production"
			case aliased:
				it.Action, it.Reason = "keep", "the alias of "+ref+" serves it"
			}
		}
		out = append(out, it)
	}
	// A job working on a commit holds its Lease (in the commit's own
	// namespace): its commit is kept (one GET per commit that would
	// otherwise go).
	for i := range out {
		if out[i].Action != "delete" || out[i].Kind != "commit" {
			continue
		}
		held, err := p.cfg.locker.Holder(ctx, out[i].Release, out[i].Release, now)
		if err != nil {
			return nil, err
		}
		if held != "" {
			out[i].Action, out[i].Reason = "keep", "a running job holds its lock ("+held+")"
		}
	}
	return p.withDatabases(ctx, n, out)
}

// errChanged is a planned removal whose commit was deployed again since.
var errChanged = errors.New("deployed again since the plan: kept")

// remove deletes the commits doomed names, Parallel at a time. Each
// outcome is recorded on its item.
func (p *Prune) remove(ctx context.Context, n Names, out *Pruned, doomed []int) error {
	var (
		mu   sync.Mutex
		done atomic.Int32
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(p.Parallel, 1))
	for _, i := range doomed {
		it := &out.Items[i]
		g.Go(func() error {
			err := p.removeOne(gctx, n, it)
			mu.Lock()
			p.record(out, it, err)
			item := *it
			mu.Unlock()
			if p.Progress != nil {
				p.Progress(int(done.Add(1)), len(doomed), item)
			}
			return nil // one failure does not stop the rest
		})
	}
	_ = g.Wait()
	return ctx.Err()
}

// record sets the outcome of removing it: deleted, kept (deployed again
// since the plan, or refused by Delete's checks: made live, a canary or
// aliased since), or failed.
func (p *Prune) record(out *Pruned, it *PruneItem, err error) {
	var ue *UsageError
	switch {
	case errors.Is(err, errChanged):
		it.Action, it.Reason = "keep", errChanged.Error()
	case errors.As(err, &ue):
		it.Action, it.Reason = "keep", ue.Rule
	case err != nil:
		it.Action, it.Error = "failed", err.Error()
		out.Failed++
	default:
		it.Action = "deleted"
		out.Deleted++
	}
}

// removeOne deletes one planned commit through Delete's own path.
func (p *Prune) removeOne(ctx context.Context, n Names, it *PruneItem) error {
	c, err := n.WithSHA(it.Short)
	if err != nil {
		return err
	}
	d := &Delete{cfg: p.cfg}
	res, err := d.prepare(ctx, c)
	if err != nil || res.Gone {
		return err
	}
	return d.locked(ctx, c, res, false, func(ctx context.Context) error {
		recs, err := p.cfg.records(ctx, c.Namespace, "name="+c.Release, consistent)
		if err != nil {
			return err
		}
		got := 0
		if len(recs) > 0 {
			got = recs[0].Version
		}
		if got != it.version {
			return errChanged
		}
		return nil
	})
}
