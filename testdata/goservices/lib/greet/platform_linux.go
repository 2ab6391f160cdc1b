package greet

func platform() string { return "linux" }
