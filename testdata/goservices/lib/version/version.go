// Package version holds values set at link time.
package version

var (
	// Version is the release version (stamped by the binaries' x_defs).
	Version = "0.0.0-dev"
	// Commit is the source commit (stamped by this package's x_defs).
	Commit = "unknown"
)
