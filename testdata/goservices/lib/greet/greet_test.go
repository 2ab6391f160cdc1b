package greet

import "testing"

func TestHello(t *testing.T) { _ = Hello("x") }
