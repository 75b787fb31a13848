package flow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"sort"
	"strings"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/expr"
)

// multipartSpec is a compiled http.multipart: the file part and the form
// fields of a multipart/form-data body.
type multipartSpec struct {
	field, filename, contentType string
	content                      *expr.Program
	fields                       []namedTemplate
}

func compileMultipart(m *config.Multipart, jb jqBinder, ptr string) (*multipartSpec, error) {
	s := &multipartSpec{field: m.Field, filename: m.Filename, contentType: m.ContentType}
	if s.field == "" {
		s.field = "file"
	}
	if s.filename == "" {
		s.filename = s.field
	}
	if s.contentType == "" {
		s.contentType = "application/octet-stream"
	}
	var err error
	if s.content, err = expr.Compile(m.Content); err != nil {
		return nil, fmt.Errorf("content: %w", err)
	}
	s.content = jb.program(s.content, ptr+"/content")
	if s.fields, err = templates(m.Fields, jb, ptr+"/fields"); err != nil {
		return nil, fmt.Errorf("fields.%w", err)
	}
	return s, nil
}

// build writes the body: the form fields in name order, then the file.
func (s *multipartSpec) build(ctx context.Context, doc map[string]any, render func(*expr.Template) (string, error)) ([]byte, string, error) {
	v, err := s.content.Run(ctx, doc, doc)
	if err != nil && !errors.Is(err, expr.ErrNoOutput) {
		return nil, "", fmt.Errorf("content: %w", err)
	}
	content, err := fileContent(v)
	if err != nil {
		return nil, "", fmt.Errorf("content: %w", err)
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fields := append([]namedTemplate(nil), s.fields...)
	sort.Slice(fields, func(i, j int) bool { return fields[i].name < fields[j].name })
	for _, f := range fields {
		val, err := render(f.t)
		if err != nil {
			return nil, "", fmt.Errorf("fields.%s: %w", f.name, err)
		}
		if err := w.WriteField(f.name, val); err != nil {
			return nil, "", err
		}
	}
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, escapeQuotes(s.field), escapeQuotes(s.filename)))
	h.Set("Content-Type", s.contentType)
	part, err := w.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	part.Write(content)
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// fileContent is the file's bytes from the content program's value: a
// string as it is, an array one line per element, anything else as JSON.
func fileContent(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(x), nil
	case []any:
		var b bytes.Buffer
		for _, e := range x {
			if s, ok := e.(string); ok {
				b.WriteString(s)
			} else {
				j, err := json.Marshal(e)
				if err != nil {
					return nil, err
				}
				b.Write(j)
			}
			b.WriteByte('\n')
		}
		return b.Bytes(), nil
	}
	return json.Marshal(v)
}

var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"")

func escapeQuotes(s string) string { return quoteEscaper.Replace(s) }
