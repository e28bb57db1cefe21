// Package logutil holds small logging helpers shared by the agent's parts:
// ErrorLog turns a failure that repeats every few seconds (a full disk, a
// vanished interface) into one line per backoff period and a closing
// "recovered after N failures" line.
package logutil
