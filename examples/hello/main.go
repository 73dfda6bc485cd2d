// Command hello is the sample app of shipper's demo and GitLab example:
// "/" answers a random Docker-style name (distracted_clarke), "/version"
// the short commit SHA from APP_VERSION, and every response carries the
// header "env: go-<version>". Built static, it runs on a scratch image.
package main

import (
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"
)

var (
	adjectives = []string{"admiring", "brave", "busy", "clever", "distracted", "eager", "ecstatic", "elegant",
		"focused", "gallant", "happy", "hopeful", "jolly", "keen", "laughing", "modest", "nostalgic", "peaceful",
		"quirky", "relaxed", "serene", "sharp", "stoic", "tender", "upbeat", "vibrant", "wizardly", "zealous"}
	names = []string{"albattani", "babbage", "bohr", "clarke", "curie", "darwin", "einstein", "euler", "feynman",
		"galileo", "goldberg", "hopper", "hypatia", "kepler", "knuth", "lamarr", "lovelace", "mccarthy", "meitner",
		"newton", "noether", "pasteur", "ritchie", "shannon", "thompson", "turing", "wozniak", "yonath"}
)

func randomName() string {
	return adjectives[rand.IntN(len(adjectives))] + "_" + names[rand.IntN(len(names))]
}

func handler() http.Handler {
	version := os.Getenv("APP_VERSION")
	if version == "" {
		version = "unknown"
	}
	env := "go-" + strings.TrimPrefix(runtime.Version(), "go")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, randomName())
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, version)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("env", env)
		mux.ServeHTTP(w, r)
	})
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: handler(), ReadHeaderTimeout: 5 * time.Second}
	log.Printf("hello %s listening on %s", os.Getenv("APP_VERSION"), srv.Addr)
	log.Fatal(srv.ListenAndServe())
}
