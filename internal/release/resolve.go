package release

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// resolveCommit makes one commit one release, whatever length of SHA the
// caller gave. A release is named by the first 8 characters of its SHA and
// its namespace records the SHA it was deployed with (AnnotationSHA):
//
//   - 8 or more characters name the release directly; the recorded SHA must
//     agree (one a prefix of the other), else the caller means another
//     commit that shares the first 8 characters: refused, as a second commit
//     with the same short SHA cannot have its own release;
//   - 7 characters (git's shortest) can match several releases: the app's
//     namespaces are searched; one match is that commit, several are
//     refused listing them, none leaves n naming no existing release.
//
// The result carries the longer of the two SHAs, so a deploy given the
// short SHA of a commit deployed with its full one keeps COMMIT_SHA whole.
// found reports whether the commit has a namespace; read, when sent, is
// the read of it (beginCommit sends it early).
func (c *Configuration) resolveCommit(ctx context.Context, n Names, read *early[*corev1.Namespace]) (_ Names, found bool, _ error) {
	if len(n.SHA) >= shortSHALen {
		ns, err := read.get(func() (*corev1.Namespace, error) {
			return c.client.CoreV1().Namespaces().Get(ctx, n.Namespace, metav1.GetOptions{})
		})
		if apierrors.IsNotFound(err) {
			c.seen.Store(n.Namespace, seenNamespace{at: time.Now()})
			return n, false, nil
		}
		if err != nil {
			return n, false, fmt.Errorf("reading namespace %q: %w", n.Namespace, err)
		}
		c.seen.Store(n.Namespace, seenNamespace{ns: ns, at: time.Now()})
		stored := ns.Annotations[AnnotationSHA]
		if stored == "" || ns.Labels[LabelApp] != n.AppPart {
			return n, true, nil // not shipper's, or older: the ownership checks decide
		}
		if !sameCommit(stored, n.SHA) {
			return n, true, &UsageError{Input: "commit SHA", Value: n.SHA, Rule: fmt.Sprintf(
				"release %s is commit %s, another commit with the same first %d characters: both cannot be deployed; delete it first (`shipper delete --sha %s`)",
				n.Release, stored, shortSHALen, stored)}
		}
		if len(stored) > len(n.SHA) {
			n, err = n.WithSHA(stored)
		}
		return n, true, err
	}
	nss, err := c.previewNamespaces(ctx, n)
	if err != nil {
		return n, false, fmt.Errorf("looking up commit %s: %w", n.SHA, err)
	}
	var matches []string
	for _, ns := range nss {
		if ns.DeletionTimestamp != nil {
			continue // being deleted: no longer a deployed commit
		}
		sha := cmp.Or(ns.Annotations[AnnotationSHA], ns.Labels[LabelSHA])
		if strings.HasPrefix(sha, n.SHA) {
			matches = append(matches, sha)
		}
	}
	switch len(matches) {
	case 0:
		return n, false, nil
	case 1:
		n, err = n.WithSHA(matches[0])
		return n, true, err
	}
	sort.Strings(matches)
	return n, false, &UsageError{Input: "commit SHA", Value: n.SHA, Rule: fmt.Sprintf(
		"matches %d deployed commits (%s): give more characters", len(matches), strings.Join(matches, ", "))}
}

// sameCommit reports whether two SHAs, of any length, can name the same
// commit: one is a prefix of the other.
func sameCommit(a, b string) bool {
	return a != "" && b != "" && (strings.HasPrefix(a, b) || strings.HasPrefix(b, a))
}
