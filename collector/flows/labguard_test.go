package flows

import (
	"testing"

	"github.com/netsight/netsight/internal/testlab"
)

// requireLab skips privileged lab tests in the -short pass (they run in the
// full pass, where testlab.RequireRoot fails instead of skipping in CI).
func requireLab(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("lab test: skipped with -short")
	}
	testlab.RequireRoot(t)
}
