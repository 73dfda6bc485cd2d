package database

import "context"

// SetAutoFileCopyBytes lowers the template size from which e, a
// *Postgres, copies files under StrategyAuto.
func SetAutoFileCopyBytes(e Engine, n int64) { e.(*Postgres).fileCopyFrom = n }

// Clone runs only the copy Ensure begins with, as a job killed right
// after it would leave it.
func Clone(ctx context.Context, e Engine, name string) error {
	p := e.(*Postgres)
	db, err := p.open("")
	if err != nil {
		return err
	}
	defer db.Close()
	return p.clone(ctx, db, name)
}
