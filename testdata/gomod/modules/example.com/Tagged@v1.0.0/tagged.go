// Package tagged chooses its files by build constraints (the module path has an upper-case
// letter, escaped as "!t" by the proxy protocol).
package tagged

// Describe names the files chosen for this platform.
func Describe() string { return "tagged: os=" + osName() + " impl=" + impl() }
