// Package greet says hello, with words from its subpackage.
package greet

import (
	"example.com/fmtx"
	"example.com/greet/words"
)

// Hello greets name.
func Hello(name string) string { return words.Hello + " " + name + " (" + fmtx.Version() + ")" }
