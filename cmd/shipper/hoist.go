package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// hoistGlobalFlags moves the global flags given before the command name to
// just after it, where the command's own copies of them are parsed.
// urfave/cli v2 has no persistent flags (v3 does): a command that defines a
// flag reads its own copy, so `shipper --app x list` would otherwise ignore
// --app. Flags given after the command name come later and still win, and
// environment variables fill only the flags given nowhere. A flag the
// command does not take stays where it is; anything this cannot parse is
// left for urfave/cli to report.
func hoistGlobalFlags(app *cli.App, args []string) []string {
	takesValue := map[string]bool{}
	for _, f := range app.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, name := range f.Names() {
			takesValue[name] = !isBool
		}
	}
	type given struct {
		name   string
		tokens []string
	}
	var before []given
	i := 1
	for i < len(args) {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		tv, known := takesValue[name]
		if !known {
			return args
		}
		n := 1
		if tv && !hasValue {
			n = 2
		}
		if i+n > len(args) {
			return args
		}
		before = append(before, given{name, args[i : i+n]})
		i += n
	}
	if len(before) == 0 || i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	defined := map[string]bool{}
	for _, f := range cmd.Flags {
		for _, name := range f.Names() {
			defined[name] = true
		}
	}
	kept, moved := []string{args[0]}, []string{args[i]}
	for _, g := range before {
		if defined[g.name] {
			moved = append(moved, g.tokens...)
		} else {
			kept = append(kept, g.tokens...)
		}
	}
	return append(append(kept, moved...), args[i+1:]...)
}
