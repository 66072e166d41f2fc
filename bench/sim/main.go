// Command sim runs the pool's strategies through workloads of LLM
// traffic, in simulated time: servers with a token throughput, a batch
// limit and a first-token time that grows with load, and faults (a server
// slowing 5x, one failing, one joining by a reload). Every request goes
// through the real pool code (SelectIter, guards, AdoptProviderState) on a
// fake clock, with no sockets; a run repeats exactly for a seed.
//
//	go run ./bench/sim                 # a table per workload
//	go run ./bench/sim -json           # one JSON object a line
//	go run ./bench/sim -workload heterogeneous
//
// The workloads and the server model are in workload.go and model.go.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/onwardsgo/pool"
)

// strategies are the strategies compared, least_connections (the pool's
// weighted_random) first: the one the others are measured against.
var strategies = []struct {
	name string
	s    pool.LoadBalanceStrategy
}{
	{"least_connections", pool.WeightedRandom},
	{"round_robin", pool.RoundRobin},
	{"priority", pool.Priority},
	{"token_aware", pool.TokenAware},
	{"p2c_ewma", pool.PeakEWMA},
}

func main() {
	asJSON := flag.Bool("json", false, "print one JSON object a line")
	only := flag.String("workload", "", "run only the workload of this name")
	seed := flag.Uint64("seed", 1, "the seed of the arrivals and of the pool's random numbers")
	flag.Parse()
	ran := false
	for _, w := range workloads {
		if *only != "" && w.name != *only {
			continue
		}
		ran = true
		var sums []summary
		for _, st := range strategies {
			s := newRun(w, st.s, *seed).execute().summary()
			s.Strategy = st.name
			sums = append(sums, s)
		}
		if *asJSON {
			printJSON(os.Stdout, sums)
		} else {
			printTable(os.Stdout, w, sums)
		}
	}
	if !ran {
		fmt.Fprintf(os.Stderr, "sim: no workload %q\n", *only)
		os.Exit(2)
	}
}

func printJSON(w io.Writer, sums []summary) {
	enc := json.NewEncoder(w)
	for _, s := range sums {
		enc.Encode(s)
	}
}

func printTable(w io.Writer, wl workload, sums []summary) {
	fmt.Fprintf(w, "\n%s: %s\n\n", wl.name, wl.about)
	fmt.Fprintln(w, "| strategy | req/s | mean ms | p50 ms | p99 ms | p99 vs least_connections | TTFT p99 ms | rejected | share % |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, s := range sums {
		fmt.Fprintf(w, "| %s | %.2f | %.0f | %.0f | %.0f | %.2f | %.0f | %d | %s |\n", s.Strategy, s.Throughput,
			s.MeanMs, s.P50Ms, s.P99Ms, s.P99Ms/sums[0].P99Ms, s.TTFTP99Ms, s.Rejected, s.Share)
	}
}
