//go:build !linux

package greet

func platform() string { return "other" }
