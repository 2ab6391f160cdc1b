package calc_test

import (
	"fmt"
	"testing"

	"example.com/gotests/calc"
)

func TestAdd(t *testing.T) {
	if got := calc.Add(2, 3); got != 5 {
		t.Fatalf("Add(2, 3) = %d", got)
	}
}

func ExampleAdd() {
	fmt.Println(calc.Add(2, 3))
	// Output: 5
}
