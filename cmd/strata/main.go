// Command strata is the Strata event store's command line. Everything lives
// in internal/cli; this file only hands it the process.
package main

import (
	"os"

	"github.com/stratadb/strata/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
