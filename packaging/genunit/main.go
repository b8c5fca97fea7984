// Command genunit prints the systemd unit that the .deb installs, from
// the same code as `camfeed service install`, so the two cannot drift:
//
//	go run ./packaging/genunit > camfeed.service
package main

import (
	"fmt"

	"github.com/camfeed/camfeed/internal/systemd"
)

func main() {
	fmt.Print(systemd.Unit(systemd.DefaultUnitOptions()))
}
