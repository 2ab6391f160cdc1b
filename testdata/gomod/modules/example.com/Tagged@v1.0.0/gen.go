//go:build ignore

package main

import "example.com/generatoronly"

func main() { generatoronly.Run() }
