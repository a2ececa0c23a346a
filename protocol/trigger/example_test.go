package trigger_test

import (
	"fmt"

	"github.com/ehc-agent/ehc-agent/protocol/trigger"
)

func ExampleLookup() {
	c, _ := trigger.Lookup("newland")
	fmt.Printf("start % X\nstop  % X\nreply % X\n", c.Start, c.Stop, c.Replies[0])
	// Output:
	// start 7E 00 08 01 00 02 01 02 DA
	// stop  7E 00 08 01 00 02 02 32 B9
	// reply 02 00 00 01 00 33 31
}
