package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/pgzip"
)

// hostTree is the set of host paths a base copies, keyed by their path
// with no symlink in its directories, with what Lstat said of them.
type hostTree map[string]fs.FileInfo

// add takes the host path p with what it needs to be reached the same
// way in the image: its parent directories, and every symlink on the way
// with its target. /lib/x86_64-linux-gnu/libc.so.6 thus brings the /lib ->
// usr/lib link of a merged-/usr system, and /usr/bin/php the alternatives
// link to php8.2.
func (t hostTree) add(p string) error {
	p = filepath.Clean(p)
	if _, ok := t[p]; ok || p == "/" {
		return nil
	}
	if err := t.add(filepath.Dir(p)); err != nil {
		return err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return err
	}
	p = filepath.Join(dir, filepath.Base(p))
	if _, ok := t[p]; ok {
		return nil
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	t[p] = fi
	if fi.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	target, err := os.Readlink(p)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(dir, target)
	}
	// A link dangling on the host dangles in the image too.
	if err := t.add(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// walk adds the tree at root (a directory or a file), without the
// entries whose base name matches a skip pattern. A root that does not
// exist is no error: Ruby names a vendorarchdir it may not have.
func (t hostTree) walk(root string, skip []string) error {
	root, err := filepath.EvalSymlinks(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, pattern := range skip {
			if ok, _ := path.Match(pattern, d.Name()); ok && p != root {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		return t.add(p)
	})
}

// addLibraries adds what ldd lists for each ELF file of the tree (the
// interpreter and its extension modules): the shared libraries, each with
// its own dependencies already, and the dynamic loader.
func (t hostTree) addLibraries(ctx context.Context) error {
	var elves []string
	for p, fi := range t {
		if fi.Mode().IsRegular() && isELF(p) {
			elves = append(elves, p)
		}
	}
	sort.Strings(elves)
	for _, p := range elves {
		out, err := exec.CommandContext(ctx, "ldd", p).CombinedOutput()
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			continue
		}
		if err != nil {
			return fmt.Errorf("listing the libraries of %s: ldd: %w: %s", p, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if strings.Contains(line, "=> not found") {
				return fmt.Errorf("%s needs %s, which is not installed", p, f[0])
			}
			for _, lib := range f {
				if strings.HasPrefix(lib, "/") {
					if err := t.add(lib); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, err = io.ReadFull(f, magic)
	return err == nil && string(magic) == "\x7fELF"
}

// baseFiles are the files every base has besides the host's: the user
// nonroot, whose uid the chart runs pods as.
var baseFiles = map[string]string{
	"/etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
	"/etc/group":  "root:x:0:\nnonroot:x:65532:\n",
}

// layer writes the base as one tar, compressed as shipper's app layers
// are, and keeps it in memory: the largest base, node, is 46 MB
// compressed.
func (t hostTree) layer() (v1.Layer, error) {
	entries, err := t.headers()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for p := range entries {
		names = append(names, p)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	gz, err := pgzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := gz.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, p := range names {
		if err := writeEntry(tw, entries[p], p); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// layerTime is the timestamp of every entry of a base.
var layerTime = time.Unix(0, 0).UTC()

// headers are the tar headers of the base, by absolute path: the host
// tree's, owned by root, baseFiles, /tmp, nonroot's home, and the
// directories above them. Only modes and link targets vary.
func (t hostTree) headers() (map[string]*tar.Header, error) {
	entry := func(p string, typ byte, mode int64) *tar.Header {
		return &tar.Header{Typeflag: typ, Name: strings.TrimPrefix(p, "/"), Mode: mode, ModTime: layerTime, Format: tar.FormatPAX}
	}
	entries := map[string]*tar.Header{}
	for p, fi := range t {
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return nil, err
		}
		entries[p] = entry(p, hdr.Typeflag, hdr.Mode)
		entries[p].Size = hdr.Size
		if hdr.Typeflag == tar.TypeSymlink {
			if entries[p].Linkname, err = os.Readlink(p); err != nil {
				return nil, err
			}
		}
	}
	for p, data := range baseFiles {
		entries[p] = entry(p, tar.TypeReg, 0o644)
		entries[p].Size = int64(len(data))
	}
	entries["/tmp"] = entry("/tmp", tar.TypeDir, 0o1777)
	home := entry("/home/nonroot", tar.TypeDir, 0o755)
	home.Uid, home.Gid = nonroot, nonroot
	entries["/home/nonroot"] = home
	for p := range entries {
		for d := filepath.Dir(p); d != "/" && entries[d] == nil; d = filepath.Dir(d) {
			entries[d] = entry(d, tar.TypeDir, 0o755)
		}
	}
	return entries, nil
}

// writeEntry writes the entry of the base's path p with its content: a
// baseFiles one, or the host's file.
func writeEntry(tw *tar.Writer, hdr *tar.Header, p string) error {
	switch hdr.Typeflag {
	case tar.TypeDir:
		h := *hdr
		h.Name += "/"
		return tw.WriteHeader(&h)
	case tar.TypeSymlink:
		return tw.WriteHeader(hdr)
	case tar.TypeReg:
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if data, ok := baseFiles[p]; ok {
			_, err := io.WriteString(tw, data)
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyN(tw, f, hdr.Size)
		return err
	}
	return fmt.Errorf("%s files do not go into a base", hdr.FileInfo().Mode().Type())
}
