package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func TestHello(t *testing.T) {
	t.Setenv("APP_VERSION", "7c77eb36")
	srv := httptest.NewServer(handler())
	defer srv.Close()
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	code, body, h := get("/")
	if code != 200 || !regexp.MustCompile(`^[a-z]+_[a-z]+\n$`).MatchString(body) {
		t.Errorf("/ = %d %q, want a docker-style name", code, body)
	}
	if want := "go-" + strings.TrimPrefix(runtime.Version(), "go"); h.Get("env") != want {
		t.Errorf("env header %q, want %q", h.Get("env"), want)
	}
	if code, body, _ := get("/version"); code != 200 || body != "7c77eb36\n" {
		t.Errorf("/version = %d %q", code, body)
	}
	if code, _, _ := get("/nope"); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}
}
