// Command gitserver is a service of the monorepo.
package main

import "example.com/monorepo/lib/log"

func main() { log.Info("gitserver started") }
