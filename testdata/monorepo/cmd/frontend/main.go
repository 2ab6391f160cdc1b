// Command frontend is a service of the monorepo.
package main

import "example.com/monorepo/lib/log"

func main() { log.Info("frontend started") }
