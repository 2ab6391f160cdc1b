// Package color paints text with a palette embedded from a file.
package color

import (
	_ "embed"
	"strings"

	"example.com/fmtx"
)

//go:embed palette.txt
var palette string

// Paint names the first palette color and the fmtx release.
func Paint(s string) string {
	return strings.Fields(palette)[0] + " " + s + " (" + fmtx.Version() + ")"
}
