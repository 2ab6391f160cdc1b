package greet

import (
	"testing"

	"example.com/testonly"
)

func TestHello(t *testing.T) { _ = testonly.X }
