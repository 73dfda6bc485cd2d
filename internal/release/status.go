package release

import (
	"context"
	"fmt"
)

// Status reports one commit of an app, or its production.
type Status struct{ cfg *Configuration }

// NewStatus returns a Status.
func NewStatus(cfg *Configuration) *Status { return &Status{cfg: cfg} }

// Production returns what production of n's app serves.
func (s *Status) Production(ctx context.Context, n Names) (*Production, error) {
	if err := s.cfg.beginRead(ctx, n); err != nil {
		return nil, err
	}
	return s.cfg.production(ctx, n)
}

// Commit returns commit n, or a usage error when it is not deployed.
func (s *Status) Commit(ctx context.Context, n Names) (*Commit, error) {
	n, _, err := s.cfg.beginCommit(ctx, n, reading)
	if err != nil {
		return nil, err
	}
	commits, err := NewList(s.cfg).Run(ctx, n)
	if err != nil {
		return nil, err
	}
	for _, c := range commits {
		if c.Release == n.Release {
			return &c, nil
		}
	}
	return nil, &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf("has no release %s", n.Release)}
}
