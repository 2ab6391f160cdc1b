// Package greet formats greetings.
package greet

import (
	"fmt"

	"example.com/goservices/lib/version"
)

// Hello greets a service by name with the version it was built at.
func Hello(service string) string {
	return fmt.Sprintf("%s %s (%s) %s", service, version.Version, version.Commit, platform())
}
