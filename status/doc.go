// Package status serves an HTML page of a [pool.Registry]'s state, for
// operators: every alias with its admitted requests in flight, its limit
// and its refusals, and every provider with its load, limit, outlier state
// (healthy, ejected, half-open, cooling) and outcome counts. The page is
// drawn from one [pool.Registry.Snapshot] per request, refreshes itself
// every two seconds, and shows no key.
//
//	mux.Handle("GET /status", status.Handler(reg))
//
// It uses the standard library only. Mount it where only operators reach
// it: it shows the providers' URLs (without user info or query).
package status
