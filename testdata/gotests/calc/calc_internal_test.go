package calc

import (
	"os"
	"testing"
)

func TestDouble(t *testing.T) {
	if double(2) != 4 {
		t.Fatal("double(2) != 4")
	}
}

func TestEnvAndData(t *testing.T) {
	if os.Getenv("CALC_MODE") != "strict" {
		t.Fatalf("CALC_MODE = %q", os.Getenv("CALC_MODE"))
	}
	if os.Getenv("OCIB_TEST_FLAG") != "on" {
		t.Fatalf("--test_env not passed: %q", os.Getenv("OCIB_TEST_FLAG"))
	}
	if _, err := os.Stat("calc/testdata/cases.txt"); err != nil {
		t.Fatal(err)
	}
}
