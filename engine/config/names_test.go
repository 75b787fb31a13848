package config

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// ReadNames names what Load loads, from the same files, and leaves out
// without an error what it cannot name.
func TestReadNames(t *testing.T) {
	api := func(code, version, desc string) string {
		return "apiVersion: databus/v1\nkind: Api\ncode: " + code + "\nversion: " + version + "\ndescription: " + desc + "\nstatus: online\nmethods: [GET]\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n"
	}
	dir := writeFiles(t, map[string]string{
		"databus.yaml":                "apiVersion: databus/v1\nkind: Settings\n",
		"apis/order.yaml":             api("order.create", "v1", "Create an order"),
		"apis/v2/order.yaml":          api("order.create", "v2", "|\n  Create an order\n  (second line)"),
		"apis/nested/deep/quote.yml":  api("quote", "v1", "''"),
		"apis/copy.yaml":              api("quote", "v1", "the same code:version again"),
		"apis/.hidden.yaml":           api("hidden", "v1", "x"),
		"apis/.draft/x.yaml":          api("draft", "v1", "x"),
		"apis/notes.txt":              api("text", "v1", "x"),
		"apis/broken.yaml":            "code: [unclosed\n",
		"apis/wrong-kind.yaml":        "apiVersion: databus/v1\nkind: Credential\nappId: misplaced\n",
		"apis/no-version.yaml":        "apiVersion: databus/v1\nkind: Api\ncode: half\n",
		"apis/colon.yaml":             api("'a:b'", "v1", "x"),
		"credentials/demo.yaml":       "apiVersion: databus/v1\nkind: Credential\nappId: demo-app\n",
		"credentials/sub/other.yaml":  "apiVersion: databus/v1\nkind: Credential\nappId: other-app\n",
		"credentials/empty.yaml":      "",
		"policies/standard.yaml":      "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: standard\n",
		"tests/order.yaml":            "apiVersion: databus/v1\nkind: ApiTest\napi: order.create:v1\ncases: []\n",
		"apis/huge.yaml":              api("huge", "v1", strings.Repeat("x", MaxNameFileBytes)),
		"elsewhere/apis/outside.yaml": api("outside", "v1", "x"),
	})
	n, err := ReadNames(context.Background(), dir, DefaultNameLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := &Names{
		APIs: []APIName{
			{Code: "order.create", Version: "v1", Description: "Create an order"},
			{Code: "order.create", Version: "v2", Description: "Create an order"},
			{Code: "quote", Version: "v1", Description: "the same code:version again"}, // the first file in path order
		},
		Credentials: []string{"demo-app", "other-app"},
	}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("got  %+v\nwant %+v", n, want)
	}

	if _, err := ReadNames(context.Background(), filepath.Join(dir, "no-such-folder"), DefaultNameLimits); !errors.Is(err, ErrNotRepository) {
		t.Errorf("missing folder: %v, want ErrNotRepository", err)
	}
	if _, err := ReadNames(context.Background(), filepath.Join(dir, "databus.yaml"), DefaultNameLimits); !errors.Is(err, ErrNotRepository) {
		t.Errorf("a file: %v, want ErrNotRepository", err)
	}
}

// The names of the sample repository are its loaded APIs and credentials.
func TestReadNamesAreLoads(t *testing.T) {
	repo, _, err := Load("../..")
	if err != nil {
		t.Fatal(err)
	}
	n, err := ReadNames(context.Background(), "../..", DefaultNameLimits)
	if err != nil {
		t.Fatal(err)
	}
	var apis, got []string
	for _, a := range repo.APIs {
		apis = append(apis, a.Code+":"+a.Version)
	}
	for _, a := range n.APIs {
		got = append(got, a.Code+":"+a.Version)
	}
	var creds []string
	for _, c := range repo.Credentials {
		creds = append(creds, c.AppID)
	}
	if len(apis) == 0 || !reflect.DeepEqual(got, apis) || !reflect.DeepEqual(n.Credentials, creds) || n.Partial {
		t.Errorf("ReadNames: %v %v (partial %v); Load: %v %v", got, n.Credentials, n.Partial, apis, creds)
	}
}

// Past a limit the list is partial and says so.
func TestReadNamesBound(t *testing.T) {
	files := map[string]string{}
	for i := range 5 {
		files[fmt.Sprintf("apis/a%d.yaml", i)] = fmt.Sprintf("kind: Api\ncode: a%d\nversion: v1\n", i)
	}
	files["credentials/c.yaml"] = "kind: Credential\nappId: c\n"
	dir := writeFiles(t, files)
	n, err := ReadNames(context.Background(), dir, NameLimits{Files: 3, Bytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Partial || len(n.APIs) != 3 || n.APIs[2].Code != "a2" || len(n.Credentials) != 0 {
		t.Errorf("%+v; want a0, a1, a2, partial", n)
	}
	if n, _ := ReadNames(context.Background(), dir, NameLimits{Files: 6, Bytes: 1 << 20}); n.Partial || len(n.APIs) != 5 || len(n.Credentials) != 1 {
		t.Errorf("all six files: %+v", n)
	}
	// Each API file is 31 bytes: 100 bytes hold three of them.
	if n, _ := ReadNames(context.Background(), dir, NameLimits{Files: 6, Bytes: 100}); !n.Partial || len(n.APIs) != 3 {
		t.Errorf("100 bytes: %+v", n)
	}
}

// A context that has ended stops the reading: nothing more is read, and
// the list says it is partial.
func TestReadNamesCanceled(t *testing.T) {
	dir := writeFiles(t, map[string]string{"apis/a.yaml": "kind: Api\ncode: a\nversion: v1\n"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := ReadNames(ctx, dir, DefaultNameLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Partial || len(n.APIs) != 0 {
		t.Errorf("%+v; want nothing, partial", n)
	}
}
