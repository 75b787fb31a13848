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
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"mime"
	"mime/multipart"
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
	// MaxUploadBytes bounds an upload's body. 0: 64 MiB.
	MaxUploadBytes int64
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
	if opts.MaxUploadBytes == 0 {
		opts.MaxUploadBytes = 64 << 20
	}
	return &Service{opts: opts, jobs: map[string]*job{}}
}

// Handler serves the three services as FATE Flow's ApiReader calls them:
// POST /v1/upload, POST /v1/query and /v1/download (POST or GET, the
// method the service is registered with).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/upload", s.upload)
	mux.HandleFunc("POST /v1/query", s.query)
	mux.HandleFunc("POST /v1/download", s.download)
	mux.HandleFunc("GET /v1/download", s.download)
	return mux
}

// answer writes {code, message, data}: HTTP 200 for code 0, else the
// code as the HTTP status too (ApiReader takes a download whose status is
// not 200 for a failure).
func answer(w http.ResponseWriter, code int, message string, data any) {
	w.Header().Set("Content-Type", "application/json")
	if code != 0 {
		w.WriteHeader(code)
	}
	json.NewEncoder(w).Encode(map[string]any{"code": code, "message": message, "data": data})
}

// upload takes the id file, one id per line, and the job's parameters
// (query parameter requestBody, a JSON object: rowsPerId, default 10). The
// file comes as FATE Flow's ApiReader sends it: a multipart/form-data body
// whose part "file" holds it (ApiReader's code), the same multipart body
// under Content-Type application/octet-stream (the registry document's
// example), or the bare id stream under application/octet-stream.
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
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxUploadBytes)
	f, err := idFile(r.Header.Get("Content-Type"), bufio.NewReader(body))
	if err != nil {
		answer(w, 400, err.Error(), nil)
		return
	}
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
	if err := sc.Err(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			answer(w, 413, fmt.Sprintf("the upload is over %d bytes", s.opts.MaxUploadBytes), nil)
			return
		}
		answer(w, 400, "reading the id file: "+err.Error(), nil)
		return
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

// idFile finds the id file in an upload's body: the part "file" of a
// multipart body, named by the Content-Type's boundary or, under
// application/octet-stream, by the body's first line; else the body
// itself.
func idFile(contentType string, body *bufio.Reader) (io.Reader, error) {
	mt, mp, _ := mime.ParseMediaType(contentType)
	boundary := ""
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if boundary = mp["boundary"]; boundary == "" {
			return nil, fmt.Errorf("Content-Type %s has no boundary", contentType)
		}
	case mt == "application/octet-stream" || mt == "":
		// A multipart stream sent as octet-stream starts with its
		// delimiter line, "--" and the boundary.
		first, _ := body.Peek(80)
		if line, _, ok := strings.Cut(string(first), "\n"); ok && strings.HasPrefix(line, "--") && len(strings.TrimSpace(line)) > 2 {
			boundary = strings.TrimSpace(line)[2:]
		}
	default:
		return nil, fmt.Errorf("Content-Type %s: expected multipart/form-data or application/octet-stream", contentType)
	}
	if boundary == "" {
		return body, nil
	}
	mr := multipart.NewReader(body, boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, fmt.Errorf("no id file in the multipart field \"file\"")
		}
		if err != nil {
			return nil, fmt.Errorf("reading the multipart body: %v", err)
		}
		if p.FormName() == "file" {
			return p, nil
		}
	}
}

// job finds the job of a query, whose JSON body is {"jobId": ...}.
func (s *Service) job(r *http.Request) (string, *job, error) {
	var in struct {
		JobID string `json:"jobId"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil || in.JobID == "" {
		return "", nil, fmt.Errorf("expected the body {\"jobId\": \"...\"}")
	}
	return s.lookup(in.JobID)
}

// lookup finds job id.
func (s *Service) lookup(id string) (string, *job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[id]
	if j == nil {
		return id, nil, fmt.Errorf("no job %s", id)
	}
	return id, j, nil
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
//
// The job comes as FATE Flow's ApiReader names it: the query parameter
// requestBody, a JSON object {"jobId": ...}; the body is not read.
func (s *Service) download(w http.ResponseWriter, r *http.Request) {
	var in struct {
		JobID string `json:"jobId"`
	}
	if err := json.Unmarshal([]byte(r.URL.Query().Get("requestBody")), &in); err != nil || in.JobID == "" {
		answer(w, 400, `expected the query parameter requestBody={"jobId": "..."}`, nil)
		return
	}
	_, j, err := s.lookup(in.JobID)
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
