// Package testkit holds the helpers the tests of several packages share:
// loopback listeners, polling with a deadline, goroutine and descriptor leak
// checks, and a goroutine-safe log buffer. Only test files import it.
package testkit
