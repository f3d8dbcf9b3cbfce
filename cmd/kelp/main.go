// Command kelp builds, applies, keeps and ships Linux live kernel patches.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
