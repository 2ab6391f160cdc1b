// Package local is a module taken from a directory of the monorepo (a go.mod replace).
package local

// Where says where the module came from.
func Where() string { return "local: replaced by ./third_party/local" }
