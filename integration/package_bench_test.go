package integration

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// writeMixedTree writes about 200 MB the way app repositories look:
// compressible text and source (40%), incompressible media and archives
// (40%), and thousands of small files (20%). The seed makes it the same
// tree on every run.
func writeMixedTree(b *testing.B, dir string) int64 {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"func", "return", "import", "const", "shipper", "deploy", "error", "context", "{", "}", "\n", "\t"}
	var total int64
	write := func(p string, data []byte) {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
	}
	const mb = 1 << 20
	for i := 0; total < 80*mb; i++ { // text
		n := 1024 + r.IntN(mb)
		buf := make([]byte, 0, n+16)
		for len(buf) < n {
			buf = append(buf, words[r.IntN(len(words))]...)
			buf = append(buf, ' ')
		}
		write(fmt.Sprintf("src/pkg%02d/file%04d.go", i%40, i), buf)
	}
	for i := 0; total < 160*mb; i++ { // binary
		buf := make([]byte, mb+r.IntN(7*mb))
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		write(fmt.Sprintf("assets/media%03d.bin", i), buf)
	}
	for i := 0; total < 200*mb; i++ { // many small files
		buf := make([]byte, 1024+r.IntN(3072))
		for j := range buf {
			buf[j] = 'a' + byte(r.IntN(26))
		}
		write(fmt.Sprintf("public/d%02d/f%05d.txt", i%64, i), buf)
	}
	return total
}

// packedBytes finds the app layer's compressed size in package's log.
var packedBytes = regexp.MustCompile(`packed app layer .*?bytes=([0-9]+)`)

// BenchmarkPackage200MB compares `shipper package` of a 200 MB tree into
// the local registry with the pipeline it replaces without a daemon:
// `tar -czf` of the same tree, then `crane append`. Each iteration pushes
// to a new repository, so every blob is uploaded. Peak memory is each
// process's maximum resident set size.
func BenchmarkPackage200MB(b *testing.B) {
	env := testenv.Get(b)
	reg := env.Registry
	crane, err := testenv.Binary("crane")
	if err != nil {
		b.Fatal(err)
	}
	work := b.TempDir()
	shipper := filepath.Join(work, "shipper")
	if out, err := exec.Command("go", "build", "-o", shipper, "../cmd/shipper").CombinedOutput(); err != nil {
		b.Fatalf("building shipper: %v\n%s", err, out)
	}
	tree := filepath.Join(work, "tree")
	size := writeMixedTree(b, tree)
	b.Logf("tree: %d MiB", size>>20)

	dockerConfig := filepath.Join(work, "docker")
	auth := base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + reg.Password))
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, auth)
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	baseEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "DOCKER_CONFIG=" + dockerConfig}

	// run executes one command under GNU time and returns its peak RSS in
	// MiB. The rusage of a child of this process would not do: Go starts
	// children with vfork, and Linux carries the parent's high-water mark
	// into the child's maxrss across exec.
	rss := filepath.Join(work, "rss")
	runOut := func(b *testing.B, env []string, name string, args ...string) (float64, string) {
		cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", rss, name}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%s: %v\n%s", name, err, out)
		}
		data, err := os.ReadFile(rss)
		if err != nil {
			b.Fatal(err)
		}
		kb, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			b.Fatalf("GNU time wrote %q", data)
		}
		return float64(kb) / 1024, string(out)
	}
	run := func(b *testing.B, env []string, name string, args ...string) float64 {
		p, _ := runOut(b, env, name, args...)
		return p
	}

	// shipper at its default (gzip level 1), at gzip's default level 6
	// (tar -czf's, the same work as the baseline), and with zstd; each
	// reports its layer's size beside the time.
	for _, v := range []struct{ name, compression, level string }{
		{"shipper-gzip-1", "gzip", "1"}, {"shipper-gzip-6", "gzip", "6"}, {"shipper-zstd-1", "zstd", "1"},
	} {
		b.Run(v.name, func(b *testing.B) {
			var peak float64
			var layer int64
			env := append(baseEnv, "CI_REGISTRY_USER="+reg.Username, "CI_REGISTRY_PASSWORD="+reg.Password,
				"SHIPPER_COMPRESSION="+v.compression, "SHIPPER_COMPRESSION_LEVEL="+v.level)
			for i := 0; i < b.N; i++ {
				repo := reg.Repository(fmt.Sprintf("bench/%s-%d-%d", v.name, os.Getpid(), i))
				p, out := runOut(b, env, shipper, "package", "--context", tree, "--image", repo, "--sha", "7c77eb36", "--entrypoint", "/app/server")
				peak = max(peak, p)
				m := packedBytes.FindStringSubmatch(out)
				if m == nil {
					b.Fatalf("no packed layer size in:\n%s", out)
				}
				layer, _ = strconv.ParseInt(m[1], 10, 64)
			}
			b.ReportMetric(peak, "peak-MiB")
			b.ReportMetric(float64(layer)/(1<<20), "layer-MiB")
			b.SetBytes(size)
		})
	}
	b.Run("tar-czf+crane-append", func(b *testing.B) {
		var peak float64
		layer := filepath.Join(work, "layer.tar.gz")
		for i := 0; i < b.N; i++ {
			repo := reg.Repository(fmt.Sprintf("bench/crane-%d-%d", os.Getpid(), i))
			peak = max(peak, run(b, baseEnv, "tar", "-czf", layer, "-C", tree, "."))
			peak = max(peak, run(b, baseEnv, crane, "append", "-f", layer, "-t", repo+":7c77eb36"))
		}
		st, err := os.Stat(layer)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(peak, "peak-MiB")
		b.ReportMetric(float64(st.Size())/(1<<20), "layer-MiB")
		b.SetBytes(size)
	})
}
