// Package patched is changed by a patch in the monorepo (module_override).
package patched

// State says whether the patch was applied.
func State() string {
	return "patched: original"
}
