package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/database"
	"github.com/shipper-dev/shipper/internal/release"
)

// Every flag's value is checked before the command's first request to a
// registry or the apiserver, so bad input is exit 2 with nothing changed
// whether or not the network works. checkFlags runs the checks that need
// only the flag; those that need the names or the router run where the
// command has them, still before its first request: checkHosts,
// checkConfiguration, imageRef, withRef.

// flagChecks are the offline checks of the flags that have one, by flag
// name: the same check on every command that takes the flag. A check
// never quotes a value that may be a secret put in the wrong variable.
var flagChecks = map[string]func(c *cli.Context, name string) error{
	"output":         func(c *cli.Context, _ string) error { return checkOutput(c) },
	"timeout":        positiveDuration,
	"lock-lease":     positiveDuration,
	"drain-delay":    nonNegativeDuration,
	"url-scheme":     checkScheme,
	"verify-address": checkAddress,
	"commit-time":    func(c *cli.Context, _ string) error { _, err := commitTime(c); return err },
	"env":            checkEnvPairs,
	"weight":         checkWeight,
	"dotenv":         checkOutputFile,
	"digest-file":    checkOutputFile,
	"parallel":       checkParallel,
	"to":             checkRollbackTarget,
	"ingress-class":  func(c *cli.Context, name string) error { return release.CheckIngressClass(c.String(name)) },
	"database-url": func(c *cli.Context, name string) error {
		return ifSet(c.String(name), func(string) error { _, err := openDatabase(c); return err })
	},
	"database-template": func(c *cli.Context, name string) error {
		return ifSet(c.String(name), database.CheckTemplate)
	},
	"database-host":     func(c *cli.Context, name string) error { return ifSet(c.String(name), database.CheckHost) },
	"database-strategy": func(c *cli.Context, name string) error { return database.CheckStrategy(c.String(name)) },
	"migrate":           func(c *cli.Context, name string) error { _, err := release.MigrateArgv(c.String(name)); return err },
}

// ifSet is check of s, unless s is empty.
func ifSet(s string, check func(string) error) error {
	if s == "" {
		return nil
	}
	return check(s)
}

// checkFlags is every command's Before: the checks of the flags it takes,
// in the order --help lists them.
func checkFlags(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if check, ok := flagChecks[name]; ok {
			if err := check(c, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func positiveDuration(c *cli.Context, name string) error {
	if d := c.Duration(name); d <= 0 {
		return usageErrorf("--%s %s: must be more than 0, like 5m", name, d)
	}
	return nil
}

func nonNegativeDuration(c *cli.Context, name string) error {
	if d := c.Duration(name); d < 0 {
		return usageErrorf("--%s %s: must be 0 or more, like 30s", name, d)
	}
	return nil
}

// checkScheme is release.Hosts' rule, checked even where no host is
// built (a rollback without --domain).
func checkScheme(c *cli.Context, name string) error {
	if s := c.String(name); s != "http" && s != "https" {
		return &release.UsageError{Input: "--" + name, Value: release.NotShown, Rule: "must be http or https"}
	}
	return nil
}

func checkAddress(c *cli.Context, name string) error {
	a := c.String(name)
	if a == "" {
		return nil
	}
	i := strings.LastIndex(a, ":")
	port, err := strconv.Atoi(a[i+1:])
	if i < 0 || err != nil || port < 1 || port > 65535 {
		return &release.UsageError{Input: "--" + name, Value: a, Rule: "must be HOST:PORT, like 192.0.2.10:443"}
	}
	return nil
}

// commitTime is --commit-time, zero when empty.
func commitTime(c *cli.Context) (time.Time, error) {
	s := c.String("commit-time")
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &release.UsageError{Input: "--commit-time", Value: s, Rule: "must be RFC 3339, like 2026-11-25T19:44:38+00:00 (GitLab's CI_COMMIT_TIMESTAMP)"}
	}
	return t, nil
}

// checkEnvPairs names a bad pair by its position, never its text: a pair
// without "=" may be a secret given without its NAME= (--env "$TOKEN"),
// and what comes before an "=" that is not a name may be part of one
// (--env "$DATABASE_URL", whose query has an "=").
func checkEnvPairs(c *cli.Context, name string) error {
	for i, p := range c.StringSlice(name) {
		if k, _, ok := strings.Cut(p, "="); !ok || !envVarName.MatchString(k) {
			return &release.UsageError{Input: fmt.Sprintf("--%s #%d", name, i+1), Value: release.NotShown,
				Rule: "must be NAME=VALUE, NAME letters, digits and _, not starting with a digit"}
		}
	}
	return nil
}

// envVarName is a variable name the chart's env takes: a C identifier.
var envVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkWeight(c *cli.Context, name string) error {
	if w := c.Int(name); w < 0 || w > 100 {
		return &release.UsageError{Input: "--" + name, Value: strconv.Itoa(w), Rule: "must be a percent of production's requests, 1 to 100"}
	}
	return nil
}

// checkOutputFile refuses a file that cannot be written where the command
// writes it, after its work is done.
func checkOutputFile(c *cli.Context, name string) error {
	path := c.String(name)
	if path == "" {
		return nil
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return usageErrorf("--%s %s: no directory %s to write it in", name, path, filepath.Dir(path))
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return usageErrorf("--%s %s: is a directory: name a file", name, path)
	}
	return nil
}

func checkParallel(c *cli.Context, name string) error {
	if p := c.Int(name); p < 1 {
		return usageErrorf("--%s %d: must be 1 or more", name, p)
	}
	return nil
}

// checkRollbackTarget: a revision number, or a commit SHA (7 digits or
// more are a SHA, as release.Rollback reads them).
func checkRollbackTarget(c *cli.Context, name string) error {
	to := c.String(name)
	if to == "" {
		return nil
	}
	if v, err := strconv.Atoi(to); err == nil && v > 0 && len(to) < 7 {
		return nil
	}
	if _, err := release.ValidateSHA(to); err != nil {
		return &release.UsageError{Input: "--" + name, Value: to, Rule: "must be a production revision number or a commit SHA (7 to 40 hex characters)"}
	}
	return nil
}

// checkHosts builds the hosts of n as the command's operation will: the
// production host, or the preview host and, with --ref, the alias host.
func checkHosts(h release.Hosts, n release.Names, production bool) error {
	if production {
		_, err := h.Production(n)
		return err
	}
	if _, err := h.Preview(n); err != nil {
		return err
	}
	if n.Ref == "" {
		return nil
	}
	_, err := h.Alias(n)
	return err
}

// checkConfiguration checks what needs the Configuration, before its first
// request: --verify against the router, and the chart, loaded now (the
// operation would load it later) for the commands that take --chart.
func checkConfiguration(c *cli.Context, cfg *release.Configuration) error {
	if err := cfg.CheckVerify(verify(c)); err != nil {
		return err
	}
	for _, f := range c.Command.Flags {
		if f.Names()[0] == "chart" {
			_, err := cfg.Chart()
			return err
		}
	}
	return nil
}
