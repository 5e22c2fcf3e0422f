//go:build race

package vault_test

// raceEnabled reports a -race build, where scrypt at the real work factor
// takes many times longer and checks nothing the race detector cares about.
const raceEnabled = true
