package release

import (
	"strings"
	"testing"
)

func TestParseValuesErrorsHideValues(t *testing.T) {
	const secret = "s3cret-Value-42"
	for _, tc := range []struct {
		name      string
		sets      []string
		wantInErr string
	}{
		{"unparsable item after a secret", []string{"env.DB_PASSWORD=" + secret + ",broken"}, `"env.DB_PASSWORD=…"`},
		{"second --set", []string{"replicaCount=2", "env.TOKEN=" + secret + ",a[=1"}, "--set #2"},
		{"escaped comma in the value", []string{`env.X=` + secret + `\,more,broken`}, `"env.X=…"`},
		{"the tail of a secret after a comma", []string{"env.DB_PASSWORD=part1," + secret}, `"env.DB_PASSWORD=…"`},
		{"a secret where the key should be", []string{secret}, `"…"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseValues(nil, tc.sets)
			if !IsUsage(err) || strings.Contains(err.Error(), secret[4:]) || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("err = %v; want a usage error naming %s and never the value", err, tc.wantInErr)
			}
		})
	}
	v, err := ParseValues(nil, []string{"env.A=1,env.B=two", "replicaCount=3"})
	if err != nil || v["replicaCount"] != int64(3) || v["env"].(map[string]any)["B"] != "two" {
		t.Errorf("ParseValues = %v, %v", v, err)
	}
}
