package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// result is one run's figures.
type result struct {
	viewers   int
	cpu       float64 // % of one core
	rss, hwm  int64
	buffer    int // the pre-roll's bytes (buffer.bytes in the status)
	p50, p99  time.Duration
	units     uint64 // access units the viewers got while measuring
	mbps      float64
	failures  uint64
	bitrateIn float64
	// RSS sampled every 5 s while measuring (for -churn runs): in the
	// first and the last tenth of the run, and the extremes.
	rssSamples []int64
}

// runOnce starts a camfeed, attaches the viewers, and measures.
func runOnce(ctx context.Context, o options, proto string, run int) (result, error) {
	n := o.viewers[proto]
	s, err := startServer(ctx, o)
	if err != nil {
		return result{}, err
	}
	defer s.stop()
	col := &collector{}
	vctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	view := viewers[proto]
	for i := range n {
		wg.Go(func() {
			for vctx.Err() == nil {
				cctx, ccancel := vctx, context.CancelFunc(func() {})
				if o.churn > 0 {
					cctx, ccancel = context.WithTimeout(vctx, time.Duration(rand.Int64N(int64(o.churn)))+time.Second)
				}
				err := view(cctx, s, col)
				ccancel()
				if vctx.Err() != nil {
					return
				}
				if err != nil && cctx.Err() == nil {
					col.errors.Add(1)
					select {
					case <-vctx.Done():
					case <-time.After(500 * time.Millisecond):
					}
				}
			}
		})
		if i%10 == 9 {
			time.Sleep(20 * time.Millisecond) // do not accept-storm the server
		}
	}
	defer func() { cancel(); wg.Wait() }()

	select {
	case <-ctx.Done():
		return result{}, ctx.Err()
	case <-time.After(o.warmup):
	}
	var profErr chan error
	if o.profileDir != "" {
		profErr = make(chan error, 1)
		name := fmt.Sprintf("%s-%d-run%d", proto, n, run+1)
		go func() { profErr <- s.profile(filepath.Clean(o.profileDir), name, o.duration) }()
	}
	st0, _ := s.status()
	c0, err := cpuTicks(s.pid())
	if err != nil {
		return result{}, err
	}
	t0 := time.Now()
	col.recording.Store(true)
	var samples []int64
	tick := time.NewTicker(5 * time.Second)
	end := time.After(o.duration)
measure:
	for {
		select {
		case <-ctx.Done():
			tick.Stop()
			return result{}, ctx.Err()
		case <-tick.C:
			if rss, _, err := memory(s.pid()); err == nil {
				samples = append(samples, rss)
			}
		case <-end:
			break measure
		}
	}
	tick.Stop()
	col.recording.Store(false)
	c1, err := cpuTicks(s.pid())
	if err != nil {
		return result{}, err
	}
	wall := time.Since(t0)
	rss, hwm, _ := memory(s.pid())
	st, _ := s.status()
	if profErr != nil {
		if err := <-profErr; err != nil {
			return result{}, fmt.Errorf("pprof: %w", err)
		}
	}
	r := result{
		viewers: n, cpu: float64(c1-c0) / 100 / wall.Seconds() * 100,
		rss: rss, hwm: hwm, buffer: st.Buffer.Bytes,
		units: col.units.Load(), failures: col.errors.Load(),
		mbps:      float64(col.bytes.Load()) * 8 / wall.Seconds() / 1e6,
		bitrateIn: st.Bitrate, rssSamples: samples,
	}
	_ = st0
	col.mu.Lock()
	lat := slices.Clone(col.lat)
	col.mu.Unlock()
	if len(lat) > 0 {
		slices.Sort(lat)
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[len(lat)*99/100]
	}
	return r, nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func printTable(proto string, rs []result) {
	fmt.Printf("\n%s\n\n", proto)
	fmt.Println("| run | viewers | CPU (% of one core) | RSS | peak RSS | RSS − pre-roll | latency p50 | p99 | units seen | Mbit/s to viewers | viewer errors |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for i, r := range rs {
		fmt.Printf("| %d | %d | %.1f %% | %s | %s | %s | %s | %s | %d | %.1f | %d |\n", i+1, r.viewers, r.cpu, mib(r.rss), mib(r.hwm),
			mib(r.rss-int64(r.buffer)), ms(r.p50), ms(r.p99), r.units, r.mbps, r.failures)
	}
	for i, r := range rs {
		if len(r.rssSamples) >= 10 {
			k := len(r.rssSamples) / 10
			avg := func(v []int64) int64 {
				var t int64
				for _, x := range v {
					t += x
				}
				return t / int64(len(v))
			}
			first, last := avg(r.rssSamples[:k]), avg(r.rssSamples[len(r.rssSamples)-k:])
			fmt.Printf("\nrun %d RSS over %d samples: first tenth %s, last tenth %s (%+.1f %%), min %s, max %s\n", i+1, len(r.rssSamples),
				mib(first), mib(last), 100*float64(last-first)/float64(first), mib(slices.Min(r.rssSamples)), mib(slices.Max(r.rssSamples)))
		}
	}
	if len(rs) > 1 {
		med := func(f func(result) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		fmt.Printf("| median | %d | %.1f %% | %s | %s | %s | %s | %s | | | |\n", rs[0].viewers,
			med(func(r result) float64 { return r.cpu }),
			mib(int64(med(func(r result) float64 { return float64(r.rss) }))),
			mib(int64(med(func(r result) float64 { return float64(r.hwm) }))),
			mib(int64(med(func(r result) float64 { return float64(r.rss - int64(r.buffer)) }))),
			ms(time.Duration(med(func(r result) float64 { return float64(r.p50) }))),
			ms(time.Duration(med(func(r result) float64 { return float64(r.p99) }))))
	}
}
