// Package log prints prefixed lines.
package log

import (
	"fmt"

	"example.com/monorepo/lib/version"
)

// Info prints a line with the version.
func Info(msg string) { fmt.Printf("[%s] %s\n", version.Version(), msg) }
