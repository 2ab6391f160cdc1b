package log

import "testing"

func TestInfo(t *testing.T) { Info("hello") }
