package testlab

import (
	"fmt"
	"math"
)

// BinomialBounds returns the smallest range [lo, hi] outside of which a
// Binomial(n, p) count falls with probability at most 1-confidence, split
// evenly between the two tails (exact, not a normal approximation). Tests use
// it to check that a loss rate matches the configured probability:
//
//	lo, hi := testlab.BinomialBounds(sent, 0.1, 0.999)
//	if dropped < lo || dropped > hi { t.Errorf(...) }
func BinomialBounds(n int, p, confidence float64) (lo, hi int) {
	if n < 0 || p < 0 || p > 1 || confidence <= 0 || confidence >= 1 {
		panic(fmt.Sprintf("testlab: BinomialBounds(%d, %v, %v): bad argument", n, p, confidence))
	}
	if p == 0 {
		return 0, 0
	}
	if p == 1 {
		return n, n
	}
	tail := (1 - confidence) / 2
	lgN, _ := math.Lgamma(float64(n + 1))
	lp, lq := math.Log(p), math.Log1p(-p)
	pmf := func(k int) float64 {
		a, _ := math.Lgamma(float64(k + 1))
		b, _ := math.Lgamma(float64(n - k + 1))
		return math.Exp(lgN - a - b + float64(k)*lp + float64(n-k)*lq)
	}
	// lo: the first k where P(X <= k) exceeds the tail.
	cdf := 0.0
	lo = 0
	for k := 0; k <= n; k++ {
		cdf += pmf(k)
		if cdf > tail {
			lo = k
			break
		}
	}
	// hi: the last k where P(X >= k) exceeds the tail.
	sf := 0.0
	hi = n
	for k := n; k >= 0; k-- {
		sf += pmf(k)
		if sf > tail {
			hi = k
			break
		}
	}
	return lo, hi
}
