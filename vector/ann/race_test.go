//go:build race

package ann

// raceEnabled shrinks test data sets (never the recall assertions): the race
// detector slows the build about tenfold.
const raceEnabled = true
