// Command worker runs background jobs.
package main

import (
	"os"

	"example.com/monorepo/lib/log"
)

func main() {
	if os.Getenv("SANITY_CHECK") == "true" {
		log.Info("sanity check passed")
		return
	}
	log.Info("worker started")
}
