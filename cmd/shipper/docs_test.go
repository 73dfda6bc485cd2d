package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/gate"
)

// The documentation is checked against the CLI, so that an example copied
// from it runs: every `shipper <command> --flag ...` in a fenced block of
// README.md and docs/*.md names a command the app has and only flags that
// command takes (urfave/cli's own parsing must accept it too), every
// command has such an example, a `shipper ...` code span in the prose names
// real commands and flags, and every relative link leads to a file and a
// heading that exist.

// docsRoot is the repository, seen from this package's directory (where
// go test runs).
const docsRoot = "../.."

// docFiles are the Markdown files a reader is sent to.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(docsRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{filepath.Join(docsRoot, "README.md"), filepath.Join(docsRoot, "BENCHMARKS.md")}, files...)
}

// docLine is one line of a Markdown file, with where it is.
type docLine struct {
	file string
	n    int // 1-based
	text string
}

func (l docLine) String() string {
	rel, err := filepath.Rel(docsRoot, l.file)
	if err != nil {
		rel = l.file
	}
	return fmt.Sprintf("%s:%d", rel, l.n)
}

// codeBlock is a fenced code block: its info string's language and its lines.
type codeBlock struct {
	lang  string
	lines []docLine
}

// parseMarkdown splits a Markdown file into its fenced code blocks and the
// lines outside them (prose and headings). Fences may be indented, as in a
// list item.
func parseMarkdown(file, text string) (blocks []codeBlock, prose []docLine) {
	var open *codeBlock
	var fence string
	for i, line := range strings.Split(text, "\n") {
		l := docLine{file, i + 1, line}
		trimmed := strings.TrimSpace(line)
		switch {
		case open == nil && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			fence = trimmed[:3]
			lang, _, _ := strings.Cut(strings.TrimSpace(trimmed[3:]), " ")
			open = &codeBlock{lang: lang}
		case open != nil && strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "":
			blocks = append(blocks, *open)
			open = nil
		case open != nil:
			open.lines = append(open.lines, l)
		default:
			prose = append(prose, l)
		}
	}
	return blocks, prose
}

// commandLines are the lines of a block a reader would run: after a "$ "
// prompt in a console block, every line of a shell block, the list items
// of a YAML block (a GitLab job's script). A line ending in a backslash
// continues on the next.
func commandLines(b codeBlock) []docLine {
	var shell, console bool
	switch b.lang {
	case "sh", "bash", "shell", "zsh":
		shell = true
	case "console", "shell-session":
		console = true
	case "yaml", "yml":
	default:
		return nil
	}
	var out []docLine
	for i := 0; i < len(b.lines); i++ {
		l := b.lines[i]
		text := strings.TrimSpace(l.text)
		switch {
		case strings.HasPrefix(text, "$ "):
			text = text[2:]
		case shell:
		case console:
			continue // output
		case strings.HasPrefix(text, "- "):
			text = text[2:]
		default:
			continue
		}
		for strings.HasSuffix(text, `\`) && i+1 < len(b.lines) {
			i++
			text = strings.TrimSuffix(text, `\`) + " " + strings.TrimSpace(b.lines[i].text)
		}
		l.text = text
		out = append(out, l)
	}
	return out
}

// simpleCommands splits a shell line into the words of its simple
// commands: at unquoted ;, &, |, ( and ) (so `source <(shipper completion
// bash)` and `a && shipper b` yield shipper's words), without redirections,
// up to a comment. Quotes are removed; $(...) inside double quotes stays
// one word.
func simpleCommands(line string) [][]string {
	var (
		cmds         [][]string
		words        []string
		word         strings.Builder
		inWord       bool
		skipRedirect bool
	)
	endWord := func() {
		if !inWord {
			return
		}
		if skipRedirect {
			skipRedirect = false
		} else {
			words = append(words, word.String())
		}
		word.Reset()
		inWord = false
	}
	endCommand := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
		skipRedirect = false
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\'':
			inWord = true
			for i++; i < len(rs) && rs[i] != '\''; i++ {
				word.WriteRune(rs[i])
			}
		case r == '"':
			inWord = true
			for i++; i < len(rs) && rs[i] != '"'; i++ {
				if rs[i] == '\\' && i+1 < len(rs) {
					i++
				}
				word.WriteRune(rs[i])
			}
		case r == '\\' && i+1 < len(rs):
			inWord = true
			i++
			word.WriteRune(rs[i])
		case r == '#' && !inWord:
			endCommand()
			return cmds
		case unicode.IsSpace(r):
			endWord()
		case strings.ContainsRune(";&|()", r):
			if r == '(' && word.String() == "$" {
				word.Reset()
				inWord = false
			}
			endCommand()
		case r == '<' || r == '>':
			endWord()
			if i+1 < len(rs) && rs[i+1] == '(' {
				continue // process substitution: ( starts a command
			}
			for i+1 < len(rs) && (rs[i+1] == '>' || rs[i+1] == '&') {
				i++
			}
			skipRedirect = true
		default:
			inWord = true
			word.WriteRune(r)
		}
	}
	endCommand()
	return cmds
}

var shellAssignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// shipperArgs returns the arguments of a simple command that runs shipper
// (shipper, bin/shipper, ./shipper; after VAR=value assignments or env),
// and false for any other command: a word like shipper-values.yaml or
// shipper:package is no invocation.
func shipperArgs(words []string) ([]string, bool) {
	for len(words) > 0 && (shellAssignment.MatchString(words[0]) || words[0] == "env" || words[0] == "sudo" || words[0] == "time" || words[0] == "exec") {
		words = words[1:]
	}
	if len(words) == 0 || (words[0] != "shipper" && !strings.HasSuffix(words[0], "/shipper")) {
		return nil, false
	}
	return words[1:], true
}

// takesArguments are the commands that read positional arguments; every other
// command ignores them, so one in an example is a mistake (a flag's value
// without its flag, a flag after an argument).
var takesArguments = map[string]bool{"completion": true, "help": true, "h": true}

// flagNamed returns the flag of flags named name, and whether it takes a
// value.
func flagNamed(flags []cli.Flag, name string) (found, takesValue bool) {
	if name == "help" || name == "h" {
		return true, false
	}
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			tv, ok := f.(interface{ TakesValue() bool })
			return true, ok && tv.TakesValue()
		}
	}
	return false, false
}

// checkInvocation reports what in `shipper args...` the CLI would refuse
// or misread: an unknown command, a flag the command does not take (a
// global flag is taken before the command name, and after it where the
// command defines it, as hoistGlobalFlags arranges), a flag after a
// positional argument (urfave/cli stops parsing flags there), an argument
// to a command that takes none. "..." stands for elided flags.
func checkInvocation(app *cli.App, args []string) (command string, err error) {
	i := 0
	for ; i < len(args) && looksLikeFlag(args[i]); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		found, takesValue := flagNamed(app.Flags, name)
		if !found {
			return "", fmt.Errorf("%s is not a global flag (shipper --help)", args[i])
		}
		if takesValue && !hasValue {
			i++
		}
	}
	if i >= len(args) {
		return "", nil
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return "", fmt.Errorf("no command %q (shipper --help)", args[i])
	}
	var positional string
	rest := args[i+1:]
	if cmd.SkipFlagParsing { // shipper gate: internal/gate parses its own flags
		return cmd.Name, gate.CheckFlags(rest)
	}
	for j := 0; j < len(rest) && rest[j] != "--"; j++ {
		a := rest[j]
		if !looksLikeFlag(a) {
			switch {
			case a == "...":
			case !takesArguments[cmd.Name]:
				return cmd.Name, fmt.Errorf("shipper %s takes no arguments, got %q", cmd.Name, a)
			case positional == "":
				positional = a
			}
			continue
		}
		if positional != "" {
			return cmd.Name, fmt.Errorf("%s after the argument %q is read as an argument, not a flag", a, positional)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		found, takesValue := flagNamed(cmd.Flags, name)
		if global, _ := flagNamed(app.Flags, name); !found && global {
			return cmd.Name, fmt.Errorf("shipper %s does not take the global flag %s after its name: give it before %q", cmd.Name, a, cmd.Name)
		}
		if !found {
			return cmd.Name, fmt.Errorf("shipper %s has no flag %s (shipper %s --help)", cmd.Name, a, cmd.Name)
		}
		if takesValue && !hasValue {
			j++
		}
	}
	return cmd.Name, nil
}

func looksLikeFlag(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// parseOnly runs `shipper args...` through urfave/cli's own parsing, as
// run does (global flags hoisted), with every command's checks and action
// replaced by nothing: flag values of the wrong type are caught too.
func parseOnly(args []string) error {
	app := newApp(io.Discard, io.Discard)
	for _, cmd := range app.Commands {
		cmd.Before = nil
		cmd.Action = func(*cli.Context) error { return nil }
	}
	app.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return fmt.Errorf("unknown command %q", c.Args().First())
		}
		return nil
	}
	return app.RunContext(context.Background(), hoistGlobalFlags(app, append([]string{"shipper"}, args...)))
}

// TestDocsExamples checks every shipper invocation in the documentation's
// fenced blocks against the CLI.
func TestDocsExamples(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	app.Setup()
	clearFlagEnv(t) // flags_test.go: the job's CI_* variables would fill flags the examples leave out
	used := map[string]bool{}
	found := 0
	for _, file := range docFiles(t) {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		blocks, prose := parseMarkdown(file, string(text))
		for _, b := range blocks {
			for _, l := range commandLines(b) {
				for _, words := range simpleCommands(l.text) {
					args, ok := shipperArgs(words)
					if !ok {
						continue
					}
					found++
					cmd, err := checkInvocation(app, args)
					if err != nil {
						t.Errorf("%s: shipper %s: %v", l, strings.Join(args, " "), err)
						continue
					}
					used[cmd] = true
					if err := parseOnly(args); err != nil {
						t.Errorf("%s: shipper %s: urfave/cli refuses it: %v", l, strings.Join(args, " "), err)
					}
				}
			}
		}
		// Prose names commands and flags in code spans too, often
		// without a value (`shipper prune --max-age`) or with a
		// placeholder command (`shipper <command> --help`, `shipper ...`):
		// only the names are checked.
		for _, l := range prose {
			for _, span := range mdInlineCode.FindAllString(l.text, -1) {
				for _, words := range simpleCommands(strings.Trim(span, "`")) {
					args, ok := shipperArgs(words)
					if !ok || len(args) > 0 && (strings.HasPrefix(args[0], "<") || args[0] == "...") {
						continue
					}
					if _, err := checkInvocation(app, args); err != nil {
						t.Errorf("%s: %s: %v", l, span, err)
					}
				}
			}
		}
	}
	if found < 20 {
		t.Errorf("found %d shipper examples in the docs; the extraction is broken", found)
	}
	for _, cmd := range app.Commands {
		if cmd.Name != "help" && !used[cmd.Name] {
			t.Errorf("shipper %s has no example in a fenced block of README.md or docs/*.md", cmd.Name)
		}
	}
}

// TestDocsCheckInvocation shows that the examples' check refuses what the
// CLI refuses.
func TestDocsCheckInvocation(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	app.Setup()
	for _, tc := range []struct {
		name, line string
		wantErr    string // "" for none
	}{
		{"flags and values", `shipper deploy --app myapp --sha 7c77eb36 --domain preview.example.com --dotenv deploy.env`, ""},
		{"short flag with value", `shipper promote --app myapp --sha 7c77eb36 -f shipper-values.yaml`, ""},
		{"flag=value", `shipper deploy --wait=false --sha 7c77eb36`, ""},
		{"global flags before the command", `shipper -o json --app myapp list`, ""},
		{"assignment and comment", `CI_COMMIT_REF_SLUG=x shipper status --app myapp   # --not-a-flag`, ""},
		{"process substitution", `source <(shipper completion bash)`, ""},
		{"elided flags", `shipper deploy --app api ...`, ""},
		{"made-up flag", `shipper deploy --app myapp --made-up-flag 1`, "has no flag --made-up-flag"},
		{"made-up short flag", `shipper list -z`, "has no flag -z"},
		{"made-up global flag", `shipper --made-up list`, "not a global flag"},
		{"global flag the command lacks", `shipper package --app myapp`, "does not take the global flag --app"},
		{"unknown command", `shipper upgrade --app myapp`, `no command "upgrade"`},
		{"stray argument", `shipper status myapp`, "takes no arguments"},
		{"flag after an argument", `shipper completion bash --app x`, "read as an argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds := simpleCommands(tc.line)
			var args []string
			ok := false
			for _, words := range cmds {
				if args, ok = shipperArgs(words); ok {
					break
				}
			}
			if !ok {
				t.Fatalf("no shipper invocation found in %q (%q)", tc.line, cmds)
			}
			_, err := checkInvocation(app, args)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

// TestDocsParseOnly: urfave/cli's own parsing, which the examples also go
// through, refuses a value of the wrong type and runs no command.
func TestDocsParseOnly(t *testing.T) {
	clearFlagEnv(t)
	for _, tc := range []struct {
		args    []string
		wantErr bool
	}{
		{[]string{"-o", "json", "--app", "myapp", "list"}, false},
		{[]string{"promote", "--sha", "3f9a1c2e", "--weight", "10"}, false},
		{[]string{"deploy", "--help"}, false},
		{[]string{"promote", "--weight", "ten"}, true},
		{[]string{"--timeout", "soon", "list"}, true},
		{[]string{"upgrade"}, true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if err := parseOnly(tc.args); (err != nil) != tc.wantErr {
				t.Errorf("got %v, want an error: %v", err, tc.wantErr)
			}
		})
	}
}

// TestDocsNotInvocations: words that mention shipper without running it.
func TestDocsNotInvocations(t *testing.T) {
	for _, line := range []string{
		`cat shipper-values.yaml`,
		`kubectl create serviceaccount project-4242 -n shipper-system`,
		`helm history myapp-ref-main -n myapp-production`,
		`shipper:package:`,
		`# shipper deploy --bogus`,
	} {
		for _, words := range simpleCommands(line) {
			if args, ok := shipperArgs(words); ok {
				t.Errorf("%q: read as shipper %q", line, args)
			}
		}
	}
}

var (
	// link matches an inline Markdown link or image, its target without
	// a title.
	mdLink       = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	mdInlineCode = regexp.MustCompile("`[^`]*`")
	mdHeading    = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	urlScheme    = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	mdLinkText   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// githubAnchor is the id GitHub gives a heading: lower case, spaces to
// hyphens, punctuation other than - and _ dropped.
func githubAnchor(title string) string {
	title = mdLinkText.ReplaceAllString(title, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// headingAnchors are the heading ids of a Markdown file; a repeated heading gets
// -1, -2... as on GitHub.
func headingAnchors(prose []docLine) map[string]bool {
	ids := map[string]bool{}
	seen := map[string]int{}
	for _, l := range prose {
		m := mdHeading.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		id := githubAnchor(m[1])
		if n := seen[id]; n > 0 {
			ids[fmt.Sprintf("%s-%d", id, n)] = true
		} else {
			ids[id] = true
		}
		seen[id]++
	}
	return ids
}

func TestDocsAnchor(t *testing.T) {
	for _, tc := range []struct{ title, want string }{
		{"Routers: Ingress or Gateway API", "routers-ingress-or-gateway-api"},
		{"`shipper promote`, `shipper rollback`", "shipper-promote-shipper-rollback"},
		{"Canary promotion (gateway router)", "canary-promotion-gateway-router"},
		{"The `make bench` table", "the-make-bench-table"},
		{"At scale: N previews over 50 apps", "at-scale-n-previews-over-50-apps"},
	} {
		if got := githubAnchor(tc.title); got != tc.want {
			t.Errorf("githubAnchor(%q) = %q, want %q", tc.title, got, tc.want)
		}
	}
}

// TestDocsLinks checks that every relative link of the documentation
// leads to a file that exists and, with a #fragment, to a heading of it.
func TestDocsLinks(t *testing.T) {
	prose := map[string][]docLine{}
	load := func(file string) ([]docLine, error) {
		if p, ok := prose[file]; ok {
			return p, nil
		}
		text, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		_, p := parseMarkdown(file, string(text))
		prose[file] = p
		return p, nil
	}
	checked := 0
	for _, file := range docFiles(t) {
		lines, err := load(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			for _, m := range mdLink.FindAllStringSubmatch(mdInlineCode.ReplaceAllString(l.text, ""), -1) {
				target := m[1]
				if urlScheme.MatchString(target) {
					continue
				}
				checked++
				path, fragment, _ := strings.Cut(target, "#")
				dest := file
				if path != "" {
					dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				}
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %s: %v", l, target, err)
					continue
				}
				if fragment == "" {
					continue
				}
				if !strings.HasSuffix(dest, ".md") {
					t.Errorf("%s: link %s: a #fragment of a file that is not Markdown", l, target)
					continue
				}
				destLines, err := load(dest)
				if err != nil {
					t.Errorf("%s: link %s: %v", l, target, err)
					continue
				}
				if !headingAnchors(destLines)[fragment] {
					t.Errorf("%s: link %s: no heading #%s in %s", l, target, fragment, filepath.Base(dest))
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no relative link found: the extraction is broken")
	}
}
