package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestSecretsFromEnvAndEnvPairs(t *testing.T) {
	got := secretsFromEnv([]string{"K8S_SECRET_DB_PASSWORD=a=b", "K8S_SECRET_=x", "OTHER=y", "K8S_SECRET_TOKEN="}, "K8S_SECRET_")
	if want := map[string]string{"DB_PASSWORD": "a=b", "TOKEN": ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("secretsFromEnv = %v, want %v", got, want)
	}
	vals, err := withEnv(map[string]any{"env": map[string]any{"A": "1"}}, []string{"B=2=3", "LOG_LEVEL=debug"})
	if want := map[string]any{"A": "1", "B": "2=3", "LOG_LEVEL": "debug"}; err != nil || !reflect.DeepEqual(vals["env"], want) {
		t.Errorf("withEnv = %v, %v; want env %v", vals, err, want)
	}
	_, err = withEnv(nil, []string{"NOVALUEhunter2"})
	if err == nil || !strings.Contains(err.Error(), "NAME=VALUE") {
		t.Errorf("withEnv of a pair without '=': %v, want a refusal", err)
	}
}
