package image

import (
	"compress/gzip"
	"fmt"
	"io"
	"runtime"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression is how the app layer is compressed: gzip (the default, what
// every registry and runtime takes) or zstd (OCI's
// application/vnd.oci.image.layer.v1.tar+zstd, which containerd 1.5+
// pulls), at a level: gzip 1 (fastest, the default) to 9; zstd 1
// (fastest, the default) to 4 (best), the encoder levels of
// klauspost/compress, which go-containerregistry uses too.
type Compression struct {
	Algorithm string
	Level     int
}

// Gzip and Zstd are the algorithms.
const (
	Gzip = "gzip"
	Zstd = "zstd"
)

// check refuses an unknown algorithm or a level out of its range.
func (c Compression) check() error {
	switch c.Algorithm {
	case "", Gzip:
		if c.Level != 0 && (c.Level < gzip.BestSpeed || c.Level > gzip.BestCompression) {
			return &InputError{Path: "--compression-level", Err: fmt.Errorf("%d: gzip's levels are 1 (fastest) to 9 (smallest)", c.Level)}
		}
	case Zstd:
		if c.Level != 0 && (c.Level < int(zstd.SpeedFastest) || c.Level > int(zstd.SpeedBestCompression)) {
			return &InputError{Path: "--compression-level", Err: fmt.Errorf("%d: zstd's levels are 1 (fastest) to 4 (smallest)", c.Level)}
		}
	default:
		return &InputError{Path: "--compression", Err: fmt.Errorf("%q: must be gzip or zstd", c.Algorithm)}
	}
	return nil
}

// mediaType is the layer's OCI media type.
func (c Compression) mediaType() types.MediaType {
	if c.Algorithm == Zstd {
		return types.OCILayerZStd
	}
	return types.OCILayer
}

// writer compresses into w: gzip on every core (pgzip, 1 MiB blocks),
// zstd with klauspost's streaming encoder (one encoding goroutine beside
// the writer: its concurrent-blocks mode would make the output depend on
// GOMAXPROCS). Both outputs depend only on the input and the level, so a
// layer's digest is reproducible across machines (TestZstdLayerRoundTrip
// builds at GOMAXPROCS 1 too).
func (c Compression) writer(w io.Writer) (io.WriteCloser, error) {
	if c.Algorithm == Zstd {
		level := zstd.SpeedFastest
		if c.Level != 0 {
			level = zstd.EncoderLevel(c.Level)
		}
		return zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	}
	level := gzip.BestSpeed
	if c.Level != 0 {
		level = c.Level
	}
	gz, err := pgzip.NewWriterLevel(w, level)
	if err != nil {
		return nil, err
	}
	if err := gz.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
		return nil, err
	}
	return gz, nil
}

// reader decompresses r.
func (c Compression) reader(r io.Reader) (io.ReadCloser, error) {
	if c.Algorithm == Zstd {
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return gzip.NewReader(r)
}

// String is "gzip-1", "zstd-1", ...: the algorithm and the level used.
func (c Compression) String() string {
	a, l := c.Algorithm, c.Level
	if a == "" {
		a = Gzip
	}
	if l == 0 {
		l = 1
	}
	return fmt.Sprintf("%s-%d", a, l)
}
