package gitops

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

// BenchmarkRevision measures Revision on a committed checkout of 1,000
// APIs and 1,000 policies: the first call of a Repo (nothing learnt), a
// repeated call with nothing changed, and a call after one file changed;
// each with the caches ("cached") and without them, which is the work
// every call did before ("uncached"). reads/op counts files read and
// hashed, walks/op commit trees listed.
func BenchmarkRevision(b *testing.B) {
	const n = 1000
	g := gitopstest.New(b, "")
	g.Write("databus.yaml", gitopstest.Settings)
	for i := 0; i < n; i++ {
		g.Write(fmt.Sprintf("apis/gen/api%04d.yaml", i), benchAPI(i))
		g.Write(fmt.Sprintf("policies/gen/rate%04d.yaml", i), benchPolicy(i))
	}
	g.Commit("generated")
	edited := "apis/gen/api0000.yaml"

	for _, mode := range []string{"cached", "uncached"} {
		repo := func(b *testing.B) *Repo {
			r, err := Open(g.Dir)
			if err != nil {
				b.Fatal(err)
			}
			r.uncached = mode == "uncached"
			r.racy = -time.Hour // as if the checkout were older than the racy window
			return r
		}
		report := func(b *testing.B, r *Repo) {
			b.ReportMetric(float64(r.stats.reads.Load())/float64(b.N), "reads/op")
			b.ReportMetric(float64(r.stats.treeWalks.Load())/float64(b.N), "walks/op")
		}
		b.Run("first/"+mode, func(b *testing.B) {
			var reads, walks int64
			for i := 0; i < b.N; i++ {
				r := repo(b)
				if _, err := r.Revision(); err != nil {
					b.Fatal(err)
				}
				reads += r.stats.reads.Load()
				walks += r.stats.treeWalks.Load()
			}
			b.ReportMetric(float64(reads)/float64(b.N), "reads/op")
			b.ReportMetric(float64(walks)/float64(b.N), "walks/op")
		})
		b.Run("repeat/"+mode, func(b *testing.B) {
			r := repo(b)
			if _, err := r.Revision(); err != nil {
				b.Fatal(err)
			}
			r.stats.reads.Store(0)
			r.stats.treeWalks.Store(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if rev, err := r.Revision(); err != nil || rev.Dirty {
					b.Fatal(rev.DirtyFiles, err)
				}
			}
			report(b, r)
		})
		b.Run("edit1/"+mode, func(b *testing.B) {
			r := repo(b)
			if _, err := r.Revision(); err != nil {
				b.Fatal(err)
			}
			r.stats.reads.Store(0)
			r.stats.treeWalks.Store(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				g.Write(edited, benchAPI(i+1)) // one file's bytes change
				if rev, err := r.Revision(); err != nil || len(rev.DirtyFiles) != 1 {
					b.Fatal(rev.DirtyFiles, err)
				}
			}
			b.StopTimer()
			report(b, r)
			g.Write(edited, benchAPI(0))
		})
	}
}

func benchAPI(i int) string {
	return fmt.Sprintf(`kind: Api
code: gen.api%04d
version: v1
title: Generated API %d
policy: rate%04d
flow:
  start: {next: call}
  steps:
    call:
      http: {url: "http://127.0.0.1:9/items/%d", method: GET}
      next: done
    done:
      end:
        body: {jq: '{id: .call.body.id, name: .call.body.name}'}
`, i, i, i, i) + strings.Repeat("# padding to a typical size\n", 8)
}

func benchPolicy(i int) string {
	return fmt.Sprintf(`kind: Policy
name: rate%04d
rateLimit: {requests: %d, per: 1m}
`, i, 100+i)
}
