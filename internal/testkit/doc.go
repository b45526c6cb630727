// Package testkit holds the helpers the tests of several packages share:
// loopback listeners, polling with a deadline, goroutine and descriptor leak
// checks, a goroutine-safe log buffer, and a heartbeat binary for tests that
// run it in a network lab. Only test files import it.
package testkit
