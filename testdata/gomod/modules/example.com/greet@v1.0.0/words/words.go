// Package words holds the greeting.
package words

// Hello is the greeting word.
const Hello = "hello"
