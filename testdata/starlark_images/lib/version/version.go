// Package version is the stamped release version.
package version

// Version is set at link time with --stamp.
var Version = "0.0.0+dev"
