// Package shipped ships its own BUILD file, which ocib uses instead of generating one.
package shipped

// Name says where the package came from.
func Name() string { return "shipped: own BUILD file" }
