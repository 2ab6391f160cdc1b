//go:build !linux

package tagged

import "example.com/windowsonly"

func osName() string { return windowsonly.Name }
