package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// histQuantile returns the q-quantile of a Prometheus histogram over what
// was observed between two scrapes (Prometheus text format), interpolated
// linearly inside the bucket it falls in, as histogram_quantile does, and
// the number of observations. A quantile in the +Inf bucket is the highest
// finite bound.
func histQuantile(before, after io.Reader, name string, q float64) (float64, float64, error) {
	b, err := histBuckets(before, name)
	if err != nil {
		return 0, 0, err
	}
	a, err := histBuckets(after, name)
	if err != nil {
		return 0, 0, err
	}
	bounds := make([]float64, 0, len(a))
	for ub := range a {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0, 0, fmt.Errorf("%s: no buckets", name)
	}
	total := a[bounds[len(bounds)-1]] - b[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0, 0, nil
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, ub := range bounds {
		n := a[ub] - b[ub]
		if n >= rank {
			if math.IsInf(ub, 1) {
				return lower, total, nil
			}
			if n == below {
				return ub, total, nil
			}
			return lower + (ub-lower)*(rank-below)/(n-below), total, nil
		}
		lower, below = ub, n
	}
	return lower, total, nil
}

// histBuckets reads the cumulative bucket counts of the histogram name,
// summed over its label sets, by upper bound.
func histBuckets(r io.Reader, name string) (map[float64]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := map[float64]float64{}
	fam := fams[name]
	if fam == nil {
		return out, nil
	}
	for _, m := range fam.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		inf := false
		for _, bk := range h.GetBucket() {
			out[bk.GetUpperBound()] += float64(bk.GetCumulativeCount())
			inf = inf || math.IsInf(bk.GetUpperBound(), 1)
		}
		if !inf {
			out[math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	return out, nil
}

// histQ is `benchtool histq`: prints the q-quantile in milliseconds and
// the count observed between the scrapes in files before and after.
func histQ(name string, q float64, beforeFile, afterFile string) error {
	bf, err := os.Open(beforeFile)
	if err != nil {
		return err
	}
	defer bf.Close()
	af, err := os.Open(afterFile)
	if err != nil {
		return err
	}
	defer af.Close()
	v, n, err := histQuantile(bf, af, name, q)
	if err != nil {
		return err
	}
	fmt.Printf("%.2f %d\n", v*1000, int64(n))
	return nil
}
