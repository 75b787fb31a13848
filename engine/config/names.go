package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/databus-gateway/databus/internal/safefile"
	"github.com/databus-gateway/databus/schema"
)

// Names are what a repository's files call their APIs and credentials,
// read without checking anything else: the names shell completion and
// hints offer, where a Load (schemas, jq programs, scripts, references)
// costs too much.
type Names struct {
	APIs        []APIName // sorted by code, then version; each code:version once
	Credentials []string  // appIds, sorted, each once
	// Partial: a bound was reached (NameLimits); some files were not read.
	Partial bool
}

// APIName is an API as its file names it.
type APIName struct {
	Code, Version string
	Description   string // its first line
}

// NameLimits bound what ReadNames reads.
type NameLimits struct {
	Files int   // files of apis/ and credentials/ read at most, in path order
	Bytes int64 // their bytes, added up
}

// DefaultNameLimits: twice the 10,000 APIs the loader is measured with
// (ci/bench/scale.sh), and 64 MiB of them.
var DefaultNameLimits = NameLimits{Files: 20000, Bytes: 64 << 20}

// MaxNameFileBytes: a larger file is skipped by ReadNames (the loader
// reads it; a list of names does not need it).
const MaxNameFileBytes = 1 << 20

// ReadNames reads the code, version and description of every API file and
// the appId of every credential file of the repository at dir, within
// limits (DefaultNameLimits): the files Load would read (the same walk:
// hidden files skipped, symlinked folders followed once), each parsed as
// YAML and nothing more. A file that does
// not parse, is of another kind or lacks its name is left out without a
// word: the caller wants names, validate reports faults. The error is
// non-nil only when dir cannot be read at all (ErrNotRepository). When
// ctx ends, the names read so far are returned, Partial.
func ReadNames(ctx context.Context, dir string, limits NameLimits) (*Names, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", dir, ErrNotRepository, err)
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotRepository)
	}
	list, _, _, err := listFiles(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", dir, ErrNotRepository, err)
	}
	n := &Names{}
	seenAPI := map[APIName]bool{}
	seenApp := map[string]bool{}
	files, bytes := 0, int64(0)
	for _, f := range list {
		top, _, _ := strings.Cut(f.rel, "/")
		kind := kindOfDir[top]
		if kind != schema.KindApi && kind != schema.KindCredential {
			continue
		}
		if f.st != nil && f.st.Size() > MaxNameFileBytes {
			continue
		}
		if files == limits.Files || f.st != nil && bytes+f.st.Size() > limits.Bytes || ctx.Err() != nil {
			n.Partial = true
			break
		}
		files++
		data, err := safefile.Read(filepath.Join(abs, filepath.FromSlash(f.rel)), MaxNameFileBytes)
		bytes += int64(len(data))
		if err != nil || len(data) > MaxNameFileBytes {
			continue
		}
		var doc struct {
			Kind        string `yaml:"kind"`
			Code        string `yaml:"code"`
			Version     string `yaml:"version"`
			Description string `yaml:"description"`
			AppID       string `yaml:"appId"`
		}
		if yaml.Unmarshal(data, &doc) != nil || doc.Kind != string(kind) {
			continue
		}
		switch kind {
		case schema.KindApi:
			if doc.Code == "" || doc.Version == "" || strings.ContainsAny(doc.Code+doc.Version, " \t\r\n:") {
				continue
			}
			desc, _, _ := strings.Cut(strings.TrimSpace(doc.Description), "\n")
			a := APIName{Code: doc.Code, Version: doc.Version}
			if seenAPI[a] {
				continue
			}
			seenAPI[a] = true
			a.Description = desc
			n.APIs = append(n.APIs, a)
		case schema.KindCredential:
			if doc.AppID == "" || strings.ContainsAny(doc.AppID, " \t\r\n") || seenApp[doc.AppID] {
				continue
			}
			seenApp[doc.AppID] = true
			n.Credentials = append(n.Credentials, doc.AppID)
		}
	}
	sort.Slice(n.APIs, func(i, j int) bool {
		if n.APIs[i].Code != n.APIs[j].Code {
			return n.APIs[i].Code < n.APIs[j].Code
		}
		return n.APIs[i].Version < n.APIs[j].Version
	})
	sort.Strings(n.Credentials)
	return n, nil
}
