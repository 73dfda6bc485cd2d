package release

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Commit is one deployed commit of an app, as Deploy, List and Status
// report it.
type Commit struct {
	App       string    `json:"app"`
	SHA       string    `json:"sha"`
	Short     string    `json:"short"`
	Release   string    `json:"release"`
	Namespace string    `json:"namespace"`
	Host      string    `json:"host"`
	URL       string    `json:"url"`
	Image     string    `json:"image,omitempty"`
	Revision  int       `json:"revision"`
	Status    string    `json:"status"`
	Updated   time.Time `json:"updated"`
	Live      bool      `json:"live"`
	// Canary is true for the commit a canary step sends part of
	// production to; Weight is the percent of production's requests the
	// commit gets (0 when it gets none).
	Canary bool `json:"canary,omitempty"`
	Weight int  `json:"weight,omitempty"`
	// Ref is the branch the commit was first deployed from; Aliases the
	// branches whose alias serves it (List, Status).
	Ref     string   `json:"ref,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
	// Alias is the branch alias a deploy moved, or left, and why (Deploy).
	Alias *Alias `json:"alias,omitempty"`
	// Protect is which hosts of the commit need a login (previews, all,
	// none: Deploy.Protection); "" for a revision from before protection.
	Protect string `json:"protect,omitempty"`
}

// deployedCommit refuses a commit whose preview release is missing or
// whose latest revision is not deployed (failed, or pending), and returns
// the record of the revision the commit runs; read, when sent, is the
// read of its records (nil: read now).
func (c *Configuration) deployedCommit(ctx context.Context, n Names, fresh bool, read *early[[]record]) (*record, error) {
	recs, err := read.get(func() ([]record, error) { return c.records(ctx, n.Namespace, "name="+n.Release, fresh) })
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf("release %s does not exist: run `shipper deploy --sha %s` first", n.Release, n.Short)}
	}
	// A size-up or size-down cut off or failed (pending or failed, its
	// undo failed too) is not the commit's state: the deploy before it
	// is, and the next size-up or size-down repairs it.
	i := 0
	for i < len(recs)-1 && recs[i].Sizing != "" && recs[i].Status != "deployed" {
		i++
	}
	if recs[i].Status != "deployed" {
		return nil, &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf("release %s is %s, not deployed: run `shipper deploy --sha %s` again and check its output", n.Release, recs[i].Status, n.Short)}
	}
	return &recs[i], nil
}

// requireNamespace refuses a commit whose namespace is gone or going, or
// is not this project's.
func (c *Configuration) requireNamespace(ctx context.Context, n Names) error {
	return c.requireNamespaceOf(ctx, n, consistent)
}

// requireNamespaceOf is requireNamespace; not fresh (a check before the
// locks), it may take the namespace as the operation read it a moment ago
// (getNamespace).
func (c *Configuration) requireNamespaceOf(ctx context.Context, n Names, fresh bool) error {
	get := c.getNamespace
	if fresh {
		get = func(ctx context.Context, ns string) (*corev1.Namespace, error) {
			return c.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		}
	}
	ns, err := get(ctx, n.Namespace)
	if apierrors.IsNotFound(err) || err == nil && ns.DeletionTimestamp != nil {
		return &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf("release %s was deleted meanwhile", n.Release)}
	}
	if err != nil {
		return err
	}
	return c.owned(ns, n)
}
