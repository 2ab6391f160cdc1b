// Package calc adds numbers.
package calc

// Add returns a+b.
func Add(a, b int) int { return a + b }

func double(x int) int { return 2 * x }
