// Package banner is a package of the main module.
package banner

// Text opens the output.
const Text = "svc: third-party Go modules"
