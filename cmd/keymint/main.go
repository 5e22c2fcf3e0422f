// Command keymint keeps API credentials in a local sealed vault and mints
// access tokens from them. See README.md for a tour.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], systemStreams(), os.Getenv))
}
