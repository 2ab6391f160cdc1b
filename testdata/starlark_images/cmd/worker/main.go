// Command worker, modeled on the Sourcegraph worker's image: it prints what a test checks.
package main

import (
	"fmt"
	"os"

	"example.com/images/lib/version"
)

func main() {
	if os.Getenv("SANITY_CHECK") == "true" {
		fmt.Println("sanity check passed")
		return
	}
	fmt.Printf("worker %s mode=%s greeting=%q path=%s\n", version.Version, os.Getenv("WORKER_MODE"), os.Getenv("GREETING"), os.Getenv("PATH"))
}
