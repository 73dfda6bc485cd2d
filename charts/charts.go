// Package charts embeds shipper's Helm charts in the binary, so a deploy
// needs no chart on disk.
package charts

import (
	"embed"
	"io/fs"
)

//go:embed all:preview-app
var files embed.FS

// PreviewApp returns the files of charts/preview-app, rooted at the chart.
func PreviewApp() fs.FS {
	sub, err := fs.Sub(files, "preview-app")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}
