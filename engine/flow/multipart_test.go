package flow

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"testing"
)

// TestMultipartStep sends ids as a multipart file and a form field built
// from the caller's body; the upstream parses them with the standard
// library.
func TestMultipartStep(t *testing.T) {
	up := newUpstream(t, jsonReply(200, `{"code":0,"data":{"jobId":"j-1"}}`))
	f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - id: upload
    type: http
    http:
      url: '{{up}}/upload'
      query: {requestBody: '${.request.body.params | tojson}'}
      multipart:
        field: file
        filename: ids.txt
        contentType: text/plain
        content: '.request.body.ids'
        fields: {note: 'batch ${.request.body.batch}'}
    transforms: {response: '.body.data.jobId'}
  - {id: end, type: end}
`, up.URL)
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(`{"ids":["a1","b2",3],"batch":7,"params":{"cols":["x"]}}`))), `"j-1"`)
	got := up.requests()[0]
	if got.Method != http.MethodPost {
		t.Errorf("method %s, want POST (the default of a multipart step)", got.Method)
	}
	if got.Query != "requestBody=%7B%22cols%22%3A%5B%22x%22%5D%7D" {
		t.Errorf("query %q", got.Query)
	}
	mt, params, err := mime.ParseMediaType(got.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("content type %q: %v", got.Header.Get("Content-Type"), err)
	}
	r := multipart.NewReader(bytes.NewReader(got.Body), params["boundary"])
	form, err := r.ReadForm(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if form.Value["note"][0] != "batch 7" {
		t.Errorf("field note = %q", form.Value["note"])
	}
	fh := form.File["file"]
	if len(fh) != 1 || fh[0].Filename != "ids.txt" || fh[0].Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("file part: %+v", fh)
	}
	file, _ := fh[0].Open()
	content, _ := io.ReadAll(file)
	if string(content) != "a1\nb2\n3\n" {
		t.Errorf("file content %q, want one id per line", content)
	}
}

func TestFileContent(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want string
	}{
		{"raw text", "raw text"},
		{[]any{"a", map[string]any{"k": 1.0}}, "a\n{\"k\":1}\n"},
		{map[string]any{"k": "v"}, `{"k":"v"}`},
		{nil, ""},
	} {
		got, err := fileContent(tt.v)
		if err != nil || string(got) != tt.want {
			t.Errorf("fileContent(%v) = %q, %v; want %q", tt.v, got, err, tt.want)
		}
	}
}
