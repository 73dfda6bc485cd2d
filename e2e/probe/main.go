// Command probe is the e2e's network client (e2e/network_test.go): run as
// a pod, it requests http://<address>/version for each address given,
// every second for -rounds rounds, each time on a new connection (a kept
// connection would outlive a policy that came after it), and prints one
// line per request: the address, then the status code or the error.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

func main() {
	rounds := flag.Int("rounds", 10, "requests per address")
	flag.Parse()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < *rounds; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		for _, addr := range flag.Args() {
			resp, err := client.Get("http://" + addr + "/version")
			if err != nil {
				fmt.Printf("%s error %v\n", addr, err)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			fmt.Printf("%s %d\n", addr, resp.StatusCode)
		}
	}
}
