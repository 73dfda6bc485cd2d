package release

// ChecksTakenAhead is how many of Helm's existence GETs took an answer
// sent ahead (checksAhead): for the package's external tests.
func ChecksTakenAhead(c *Configuration) int64 { return c.ahead.Taken() }
