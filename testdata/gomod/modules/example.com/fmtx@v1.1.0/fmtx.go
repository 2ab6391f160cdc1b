// Package fmtx is the shared dependency of the diamond: greet wants v1.1.0, color v1.2.0.
package fmtx

// Version names the release that minimal version selection picked.
func Version() string { return "fmtx v1.1.0" }
