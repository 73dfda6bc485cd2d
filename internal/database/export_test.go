package database

// SetAutoFileCopyBytes lowers the template size from which e, a
// *Postgres, copies files under StrategyAuto.
func SetAutoFileCopyBytes(e Engine, n int64) { e.(*Postgres).fileCopyFrom = n }
