//go:build race

package testlab

const raceEnabled = true
