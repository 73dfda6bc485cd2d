package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// checkOutput refuses an unknown --output before anything runs.
func checkOutput(c *cli.Context) error {
	switch o := c.String("output"); o {
	case "text", "json":
		return nil
	default:
		return usageErrorf("--output %q: must be text or json", o)
	}
}

func jsonOutput(c *cli.Context) bool { return c.String("output") == "json" }

// emit writes v to stdout: as indented JSON with -o json, else text.
func emit(c *cli.Context, v any, text string) error {
	if jsonOutput(c) {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprint(c.App.Writer, text)
	return err
}

// writeDotenv writes KEY=VALUE for GitLab's artifacts:reports:dotenv. The
// value is a URL built from validated hosts and scheme; a line break in it
// would add variables to every later job of the pipeline, so one is
// refused here too.
func writeDotenv(path string, kv ...string) error {
	if path == "" {
		return nil
	}
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if strings.ContainsAny(kv[i+1], "\r\n\x00") {
			return fmt.Errorf("writing %s: the value of %s holds a line break", path, kv[i])
		}
		b.WriteString(kv[i] + "=" + kv[i+1] + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
