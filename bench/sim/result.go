package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// result is what one run measured.
type result struct {
	workload, strategy string
	length             time.Duration
	completion, ttft   []time.Duration
	rejected           int
	share              []int // requests completed, by server
}

// summary is a result's figures, as the table and -json print them.
type summary struct {
	Workload   string  `json:"workload"`
	Strategy   string  `json:"strategy"`
	Throughput float64 `json:"throughput"` // requests completed a second
	MeanMs     float64 `json:"mean_ms"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	TTFTP99Ms  float64 `json:"ttft_p99_ms"`
	Rejected   int     `json:"rejected"`
	Share      string  `json:"share"` // percent of completions, by server
}

func (r result) summary() summary {
	s := summary{Workload: r.workload, Strategy: r.strategy, Rejected: r.rejected,
		Throughput: float64(len(r.completion)) / r.length.Seconds(),
		P50Ms:      ms(quantile(r.completion, 0.50)), P99Ms: ms(quantile(r.completion, 0.99)),
		TTFTP99Ms: ms(quantile(r.ttft, 0.99)), MeanMs: ms(mean(r.completion)), Share: shares(r.share)}
	return s
}

// quantile is the q-quantile of ds, nearest rank; 0 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func shares(counts []int) string {
	total := 0
	for _, n := range counts {
		total += n
	}
	parts := make([]string, len(counts))
	for i, n := range counts {
		parts[i] = fmt.Sprintf("%.0f", 100*float64(n)/float64(max(total, 1)))
	}
	return strings.Join(parts, "/")
}
