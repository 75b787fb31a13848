// Package featureservice is the example third party of the ApiReader
// pattern (DESIGN.md section 6): it takes a file of ids (upload), runs a job
// for them (query tells its status) and streams feature rows for every id
// (download). Databus registers it in the service registry and drives it
// from one flow; see ../README.md.
package featureservice

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configure the service.
type Options struct {
	// JobTime is how long a job runs before it succeeds (or fails). 0: 2s.
	JobTime time.Duration
	// MaxIDs bounds one upload. 0: 1,000,000.
	MaxIDs int
}

// Service is the feature service.
type Service struct {
	opts Options
	mu   sync.Mutex
	jobs map[string]*job
}

type job struct {
	ids       []string
	rowsPerID int
	started   time.Time
	fail      bool
}

// New returns the service.
func New(opts Options) *Service {
	if opts.JobTime == 0 {
		opts.JobTime = 2 * time.Second
	}
	if opts.MaxIDs == 0 {
		opts.MaxIDs = 1_000_000
	}
	return &Service{opts: opts, jobs: map[string]*job{}}
}

// Handler serves POST /v1/upload, /v1/query and /v1/download.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/upload", s.upload)
	mux.HandleFunc("POST /v1/query", s.query)
	mux.HandleFunc("POST /v1/download", s.download)
	return mux
}

// answer writes {code, message, data}.
func answer(w http.ResponseWriter, code int, message string, data any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"code": code, "message": message, "data": data})
}

// upload takes the id file (multipart field "file", one id per line) and
// the job's parameters (query parameter requestBody, a JSON object:
// rowsPerId, default 10).
func (s *Service) upload(w http.ResponseWriter, r *http.Request) {
	var params struct {
		RowsPerID int `json:"rowsPerId"`
	}
	if rb := r.URL.Query().Get("requestBody"); rb != "" {
		if err := json.Unmarshal([]byte(rb), &params); err != nil {
			answer(w, 400, "requestBody is not a JSON object: "+err.Error(), nil)
			return
		}
	}
	if params.RowsPerID <= 0 {
		params.RowsPerID = 10
	}
	f, _, err := r.FormFile("file")
	if err != nil {
		answer(w, 400, "no id file in the multipart field \"file\": "+err.Error(), nil)
		return
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	fail := false
	for sc.Scan() {
		id := strings.TrimSpace(sc.Text())
		if id == "" {
			continue
		}
		if len(ids) == s.opts.MaxIDs {
			answer(w, 413, fmt.Sprintf("more than %d ids", s.opts.MaxIDs), nil)
			return
		}
		ids = append(ids, id)
		fail = fail || strings.Contains(id, "fail")
	}
	if len(ids) == 0 {
		answer(w, 400, "the id file is empty", nil)
		return
	}
	var b [8]byte
	rand.Read(b[:])
	id := "job-" + hex.EncodeToString(b[:])
	s.mu.Lock()
	s.jobs[id] = &job{ids: ids, rowsPerID: params.RowsPerID, started: time.Now(), fail: fail}
	s.mu.Unlock()
	answer(w, 0, "success", map[string]any{"jobId": id, "ids": len(ids)})
}

func (s *Service) job(r *http.Request) (string, *job, error) {
	var in struct {
		JobID string `json:"jobId"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil || in.JobID == "" {
		return "", nil, fmt.Errorf("expected {\"jobId\": \"...\"}")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[in.JobID]
	if j == nil {
		return in.JobID, nil, fmt.Errorf("no job %s", in.JobID)
	}
	return in.JobID, j, nil
}

// status is running until JobTime has passed, then success (or failed for
// a job with an id containing "fail").
func (s *Service) status(j *job) string {
	switch {
	case time.Since(j.started) < s.opts.JobTime:
		return "running"
	case j.fail:
		return "failed"
	}
	return "success"
}

func (s *Service) query(w http.ResponseWriter, r *http.Request) {
	id, j, err := s.job(r)
	if err != nil {
		answer(w, 404, err.Error(), nil)
		return
	}
	answer(w, 0, "success", map[string]any{"jobId": id, "status": s.status(j)})
}

// download streams CSV: a header, then rowsPerId rows for each id, made as
// they are written.
func (s *Service) download(w http.ResponseWriter, r *http.Request) {
	_, j, err := s.job(r)
	if err != nil {
		answer(w, 404, err.Error(), nil)
		return
	}
	if st := s.status(j); st != "success" {
		answer(w, 409, "job is "+st, nil)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.WriteString("id,row,f1,f2,f3,f4,f5,f6,f7,f8\n")
	for _, id := range j.ids {
		h := fnv.New64a()
		h.Write([]byte(id))
		seed := h.Sum64()
		for row := 0; row < j.rowsPerID; row++ {
			fmt.Fprintf(bw, "%s,%d", id, row)
			for f := 0; f < 8; f++ {
				seed = seed*6364136223846793005 + 1442695040888963407
				fmt.Fprintf(bw, ",%.6f", float64(seed>>11)/float64(1<<53))
			}
			bw.WriteByte('\n')
		}
	}
	bw.Flush()
}
