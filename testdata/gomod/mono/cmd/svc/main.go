// Command svc prints what each third-party module contributes.
package main

import (
	"fmt"

	"example.com/Tagged"
	"example.com/color"
	"example.com/fast"
	"example.com/greet"
	"example.com/local"
	"example.com/mono/lib/banner"
	"example.com/patched"
	"example.com/shipped"
)

func main() {
	fmt.Println(banner.Text)
	fmt.Println(greet.Hello("mono"))
	fmt.Println(color.Paint("svc"))
	fmt.Println(fast.Sum())
	fmt.Println(tagged.Describe())
	fmt.Println(shipped.Name())
	fmt.Println(local.Where())
	fmt.Println(patched.State())
}
