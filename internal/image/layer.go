package image

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// layerSpec says how the app directory becomes a layer.
type layerSpec struct {
	dir      string    // the build context
	workdir  string    // absolute path of the app in the image, e.g. /app
	uid, gid int       // numeric owner of every entry
	mtime    time.Time // timestamp of every entry
	ignore   []string  // patterns before the context's .dockerignore
	compress Compression
}

// buildLayer writes the context as one deterministic, compressed tar
// into a temporary file and returns it as a layer whose digests were
// computed while writing, so a 200 MB context is read once, never held in
// memory, and compressed as Compression.writer says (gzip on every core;
// the output depends only on the input and the level).
//
// go-containerregistry's tarball.LayerFromOpener would re-read and
// re-compress the tree for each digest and again for the upload; this
// layer reads its file instead.
func buildLayer(spec layerSpec) (_ *fileLayer, err error) {
	ignore, err := readIgnore(spec.dir, spec.ignore)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "shipper-layer-*.tar.gz")
	if err != nil {
		return nil, err
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(f.Name())
		}
	}()

	compressed := sha256.New()
	counter := &countWriter{w: io.MultiWriter(f, compressed)}
	gz, err := spec.compress.writer(counter)
	if err != nil {
		return nil, err
	}
	uncompressed := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gz, uncompressed))
	if err := writeTree(tw, spec, ignore); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return &fileLayer{
		path:   f.Name(),
		digest: hashOf(compressed),
		diffID: hashOf(uncompressed),
		size:   counter.n,
		comp:   spec.compress,
	}, nil
}

// readIgnore reads .dockerignore from the context, after .git, always
// excluded, and the defaults: the file's patterns come last, so they win.
func readIgnore(dir string, defaults []string) (*patternmatcher.PatternMatcher, error) {
	patterns := append([]string{".git"}, defaults...)
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	switch {
	case err == nil:
		defer f.Close()
		p, err := ignorefile.ReadAll(f)
		if err != nil {
			return nil, &InputError{Path: filepath.Join(dir, ".dockerignore"), Err: err}
		}
		patterns = append(patterns, p...)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, &InputError{Path: filepath.Join(dir, ".dockerignore"), Err: err}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, &InputError{Path: filepath.Join(dir, ".dockerignore"), Err: fmt.Errorf("invalid pattern in .dockerignore: %w", err)}
	}
	return pm, nil
}

// writeTree writes the workdir's parents, then the context's entries in
// lexical order (WalkDir's order), each with fixed owner and timestamp.
func writeTree(tw *tar.Writer, spec layerSpec, ignore *patternmatcher.PatternMatcher) error {
	root := strings.Trim(path.Clean(spec.workdir), "/")
	var parts []string // none for workdir "/": the context is the image's root
	if root != "" {
		parts = strings.Split(root, "/")
	}
	for i := range parts {
		hdr := spec.header(strings.Join(parts[:i+1], "/")+"/", tar.TypeDir, 0o755)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	parentInfo := map[string]patternmatcher.MatchInfo{}
	return filepath.WalkDir(spec.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return &InputError{Path: p, Err: err}
		}
		rel, err := filepath.Rel(spec.dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		excluded, info, err := ignore.MatchesUsingParentResults(rel, parentInfo[path.Dir(rel)])
		if err != nil {
			return err
		}
		if d.IsDir() {
			parentInfo[rel] = info
			if excluded && !ignore.Exclusions() {
				return filepath.SkipDir // nothing below can be re-included
			}
		}
		if excluded {
			return nil
		}
		return writeEntry(tw, spec, p, rel, d)
	})
}

func writeEntry(tw *tar.Writer, spec layerSpec, p, rel string, d fs.DirEntry) error {
	name := path.Join(strings.Trim(spec.workdir, "/"), rel)
	info, err := d.Info()
	if err != nil {
		return &InputError{Path: p, Err: err}
	}
	perm := int64(info.Mode().Perm())
	switch {
	case d.IsDir():
		return tw.WriteHeader(spec.header(name+"/", tar.TypeDir, perm))
	case d.Type()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return &InputError{Path: p, Err: err}
		}
		if escapes(rel, target) {
			return &InputError{Path: p, Err: fmt.Errorf("symlink to %q points outside the build context", target)}
		}
		hdr := spec.header(name, tar.TypeSymlink, 0o777)
		hdr.Linkname = target
		return tw.WriteHeader(hdr)
	case d.Type().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return &InputError{Path: p, Err: err}
		}
		defer f.Close()
		hdr := spec.header(name, tar.TypeReg, perm)
		hdr.Size = info.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.Copy(tw, f)
		if err != nil {
			return &InputError{Path: p, Err: err}
		}
		if n != info.Size() {
			return &InputError{Path: p, Err: errors.New("file changed size while it was read")}
		}
		return nil
	default:
		return &InputError{Path: p, Err: fmt.Errorf("unsupported file type %s (only files, directories and symlinks go into an image)", d.Type())}
	}
}

// header is a tar header with everything that varies between machines or
// runs fixed: owner, names, timestamps.
func (s layerSpec) header(name string, typ byte, perm int64) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     perm,
		Uid:      s.uid,
		Gid:      s.gid,
		ModTime:  s.mtime,
		Format:   tar.FormatPAX,
	}
}

// escapes reports whether a symlink at rel (relative to the context) with
// this target resolves outside the context.
func escapes(rel, target string) bool {
	if path.IsAbs(target) || filepath.IsAbs(target) {
		return true
	}
	resolved := path.Join(path.Dir(rel), filepath.ToSlash(target))
	return resolved == ".." || strings.HasPrefix(resolved, "../")
}

// fileLayer is a compressed layer in a local file with known digests.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
	comp           Compression
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.comp.mediaType(), nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	gz, err := l.comp.reader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &readCloser{Reader: gz, close: func() error { gz.Close(); return f.Close() }}, nil
}

// remove deletes the layer's file.
func (l *fileLayer) remove() error { return os.Remove(l.path) }

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}
