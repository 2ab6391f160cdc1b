//go:build !cgo

package tagged

func impl() string { return "pure" }
