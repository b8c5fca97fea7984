package app

import (
	"testing"

	"github.com/camfeed/camfeed/internal/config"
)

func TestMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	cfg := config.Default()
	if _, ok := memoryLimit(cfg); ok {
		t.Fatal("a limit was set although GOMEMLIMIT is in the environment")
	}
}

func TestMemoryLimitFromBudget(t *testing.T) {
	cfg := config.Default()
	cfg.Limits.MaxViewers = 64
	n, ok := memoryLimit(cfg)
	budget := int64(cfg.Effective(cfg.FeedNames()[0]).BudgetBytes())
	if want := 2*budget + memBase + 64*memPerViewer; !ok || n != want {
		t.Fatalf("limit %d (%v), want %d", n, ok, want)
	}
	cfg.Limits.MaxViewers = 0
	if _, ok := memoryLimit(cfg); ok {
		t.Fatal("a limit was set with no viewer cap")
	}
}
