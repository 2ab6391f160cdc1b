// Package version holds the release version, stamped at link time.
package version

var (
	version   = "0.0.0+dev"
	timestamp = "0"
)

// Version is the release version.
func Version() string { return version }

// Timestamp is when the binary was built.
func Timestamp() string { return timestamp }
