package featureservice_test

// The service takes what FATE Flow's ApiReader sends (the registry
// document, section 3.1): the id file in each of the shapes it comes in,
// the job in query's JSON body, and download's job in the query parameter
// requestBody with no body.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/examples/apireader/featureservice"
)

type answer struct {
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

func send(t *testing.T, method, u, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func decode(t *testing.T, b []byte) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("not {code, message, data}: %s", b)
	}
	return a
}

// fateMultipart is the body ApiReader builds with MultipartEncoder: one
// part "file", named by the id file's path, application/octet-stream.
func fateMultipart(t *testing.T, ids string) ([]byte, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.SetBoundary("3f2c9a0e5b7d4c1e8a6f0b2d4e6a8c0e") // uuid4().hex, as the encoder makes it
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="/data/projects/fate/jobs/202201/api_reader_0/id"`)
	h.Set("Content-Type", "application/octet-stream")
	p, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(p, ids)
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func TestTakesWhatApiReaderSends(t *testing.T) {
	svc := httptest.NewServer(featureservice.New(featureservice.Options{JobTime: 50 * time.Millisecond}).Handler())
	t.Cleanup(svc.Close)
	requestBody := url.Values{"requestBody": {`{"rowsPerId": 3, "stat_month": "202201", "version": "v1"}`}}.Encode()
	upload := svc.URL + "/v1/upload?" + requestBody

	mp, mpType := fateMultipart(t, "u1\nu2\n")
	for _, c := range []struct {
		name, contentType string
		body              []byte
	}{
		// ApiReader's code: headers={'Content-Type': data.content_type}.
		{"multipart/form-data", mpType, mp},
		// The registry document's example: the same body under
		// headers={'Content-Type': "application/octet-stream"}.
		{"multipart body as octet-stream", "application/octet-stream", mp},
		// The document's "body: data stream": the ids themselves.
		{"bare id stream", "application/octet-stream", []byte("u1\r\nu2\r\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, b := send(t, "POST", upload, c.contentType, c.body)
			up := decode(t, b)
			jobID, _ := up.Data["jobId"].(string)
			if resp.StatusCode != 200 || up.Code != 0 || jobID == "" || up.Data["ids"] != 2.0 {
				t.Fatalf("upload: HTTP %d %s", resp.StatusCode, b)
			}
			// query: the JSON body {"jobId"}, until data.status is success.
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, b := send(t, "POST", svc.URL+"/v1/query", "application/json", []byte(`{"jobId": "`+jobID+`"}`))
				q := decode(t, b)
				if q.Code != 0 {
					t.Fatalf("query: %s", b)
				}
				if q.Data["status"] == "success" {
					break
				}
				if q.Data["status"] != "running" || time.Now().After(deadline) {
					t.Fatalf("query: %s", b)
				}
				time.Sleep(10 * time.Millisecond)
			}
			// download: requestBody in the query, no body, the registered
			// method (POST by default; GET works too).
			for _, method := range []string{"POST", "GET"} {
				q := url.Values{"requestBody": {fmt.Sprintf(`{"jobId": %q}`, jobID)}}.Encode()
				resp, b := send(t, method, svc.URL+"/v1/download?"+q, "", nil)
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || len(lines) != 1+2*3 ||
					!strings.HasPrefix(lines[1], "u1,0,") || !strings.HasPrefix(lines[6], "u2,2,") {
					t.Fatalf("%s download: HTTP %d %s", method, resp.StatusCode, b)
				}
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	svc := httptest.NewServer(featureservice.New(featureservice.Options{JobTime: time.Hour, MaxUploadBytes: 1 << 10}).Handler())
	t.Cleanup(svc.Close)
	mp, mpType := fateMultipart(t, "u1\n")
	_, b := send(t, "POST", svc.URL+"/v1/upload", mpType, mp)
	jobID, _ := decode(t, b).Data["jobId"].(string)
	big, bigType := fateMultipart(t, strings.Repeat("user-0000\n", 200))
	noFile := []byte("--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n")

	for _, c := range []struct {
		name, method, path, contentType string
		body                            []byte
		code                            int
		msg                             string
	}{
		{"download with the job in a JSON body", "POST", "/v1/download", "application/json", []byte(`{"jobId":"` + jobID + `"}`), 400, "requestBody"},
		{"download of no job", "POST", "/v1/download?requestBody=" + url.QueryEscape(`{"jobId":"nope"}`), "", nil, 404, "no job nope"},
		{"download before the job ends", "POST", "/v1/download?requestBody=" + url.QueryEscape(`{"jobId":"`+jobID+`"}`), "", nil, 409, "job is running"},
		{"upload over MaxUploadBytes", "POST", "/v1/upload", bigType, big, 413, "over 1024 bytes"},
		{"upload without the part file", "POST", "/v1/upload", "multipart/form-data; boundary=b", noFile, 400, `multipart field "file"`},
		{"upload of JSON", "POST", "/v1/upload", "application/json", []byte(`["u1"]`), 400, "expected multipart/form-data or application/octet-stream"},
		{"upload with a bad requestBody", "POST", "/v1/upload?requestBody=%7B", mpType, mp, 400, "requestBody is not a JSON object"},
		{"empty id file", "POST", "/v1/upload", "application/octet-stream", []byte("\n\n"), 400, "the id file is empty"},
	} {
		resp, b := send(t, c.method, svc.URL+c.path, c.contentType, c.body)
		a := decode(t, b)
		if resp.StatusCode != c.code || a.Code != c.code || !strings.Contains(a.Message, c.msg) {
			t.Errorf("%s: HTTP %d %s; want code and status %d containing %q", c.name, resp.StatusCode, b, c.code, c.msg)
		}
	}
}
