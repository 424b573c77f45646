package projections

import "slices"

// The paging every list and page of the read models shares: a limit, and a cursor that
// names the sort key of the last row of the page before.

// pageLimit is how many rows a page asked for limit holds: DefaultPageLimit for 0 or less,
// never more than MaxPageLimit.
func pageLimit(limit int) int {
	if limit <= 0 {
		return DefaultPageLimit
	}
	return min(limit, MaxPageLimit)
}

// after is the index in sorted of the first element past the cursor's key k: a page goes
// on after the last row of the one before, whether that row is still there or not.
func after[S ~[]E, E, K any](sorted S, k K, cmp func(E, K) int) int {
	i, found := slices.BinarySearchFunc(sorted, k, cmp)
	if found {
		i++
	}
	return i
}
