package release

import (
	"strings"
)

// valuesError turns the chart's schema and template failures into usage
// errors: they come from bad values, and nothing was changed yet.
func valuesError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "values don't meet the specifications of the schema"):
		// Helm lists one violation per "- " line under the chart's name.
		var problems []string
		for _, l := range strings.Split(msg, "\n") {
			if p, ok := strings.CutPrefix(strings.TrimSpace(l), "- "); ok {
				problems = append(problems, p)
			}
		}
		return &UsageError{Input: "values", Value: strings.Join(problems, "; "), Rule: "they break the chart's values.schema.json"}
	case strings.Contains(msg, "execution error at"):
		return &UsageError{Input: "values", Value: strings.ReplaceAll(msg, "\n", " "), Rule: "the chart refused them"}
	}
	return err
}
