// Package charts embeds shipper's Helm charts in the binary, so a deploy
// needs no chart on disk.
package charts

import (
	"embed"
	"io/fs"
)

//go:embed all:preview-app
var files embed.FS

// previewAppSchema is charts/preview-app's values.schema.json.
//
//go:embed preview-app/values.schema.json
var previewAppSchema string

// IsPreviewAppSchema reports whether schema is charts/preview-app's
// values.schema.json as embedded, byte for byte: a schema whose validity
// against its draft's meta-schema the tests prove (internal/release's
// TestShippedSchemaIsValid), so a deploy need not check it again.
func IsPreviewAppSchema(schema []byte) bool { return string(schema) == previewAppSchema }

// PreviewApp returns the files of charts/preview-app, rooted at the chart.
func PreviewApp() fs.FS {
	sub, err := fs.Sub(files, "preview-app")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}
