package stack

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// A stack takes seven addresses from FreeAddr in a row; none may be handed out twice, or two
// services would race for one port.
func TestFreeAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 500 {
		addr := FreeAddr(t)
		require.False(t, seen[addr], "FreeAddr returned %s twice", addr)
		seen[addr] = true

		l, err := net.Listen("tcp", addr)
		require.NoError(t, err, "the address FreeAddr returned is free")
		require.NoError(t, l.Close())
	}
}
