//go:build cgo

package tagged

// #include <stdlib.h>
import "C"

func impl() string { return "cgo" }
