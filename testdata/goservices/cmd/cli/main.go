// Command cli prints its greeting.
package main

import (
	"fmt"

	"example.com/goservices/lib/greet"
)

func main() { fmt.Println(greet.Hello("cli")) }
