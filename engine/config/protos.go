package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/databus-gateway/databus/engine/rpc/protoset"
	"github.com/databus-gateway/databus/internal/safefile"
)

// protoFile is one descriptor set of the repository, read once per load
// however many APIs name it.
type protoFile struct {
	once sync.Once
	data []byte
	set  *protoset.Set
	err  error // the finding, worded for the descriptorSet key
	dep  dep   // the bytes read, for the documents that name it
}

// descriptorSet reads and links the descriptor set at rel (relative to the
// repository root, slash-separated).
func (l *loader) descriptorSet(rel string) (*protoFile, error) {
	l.protoMu.Lock()
	if l.protos == nil {
		l.protos = map[string]*protoFile{}
	}
	p := l.protos[rel]
	if p == nil {
		p = &protoFile{}
		l.protos[rel] = p
	}
	l.protoMu.Unlock()
	p.once.Do(func() {
		path := filepath.Join(l.dir, filepath.FromSlash(rel))
		p.dep = dep{rel: rel, proto: true}
		st, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			p.err = fmt.Errorf("descriptor set %s not found in the repository", rel)
			return
		case err == nil && st.IsDir():
			p.dep.exists, p.dep.sum[0] = true, 1 // never equal to a file's state
			p.err = fmt.Errorf("descriptor set %s is a folder: expected a FileDescriptorSet file", rel)
			return
		}
		var data []byte
		if l.files != nil {
			var e *fileEntry
			e, data, err = l.files.read(rel, st)
			p.dep = depFrom(rel, true, e, err)
		} else {
			data, err = safefile.Read(path, MaxFileBytes)
		}
		if err != nil {
			p.err = fmt.Errorf("cannot read descriptor set %s: %v", rel, errors.Unwrap(err))
			return
		}
		p.data = data
		if p.set, err = protoset.Parse(data); err != nil {
			p.err = fmt.Errorf("descriptor set %s: %v", rel, err)
		}
	})
	return p, p.err
}

// checkDescriptor loads the step's descriptor set and finds its method
// there: the file is reported at descriptorSet, the service or method at
// method. The method found is kept on the step for the gateway.
func (l *loader) checkDescriptor(d *document, ptr string, r *RPCCall) {
	if !filepath.IsLocal(filepath.FromSlash(r.DescriptorSet)) {
		d.errorf(ptr+"/descriptorSet", "descriptor set %q must be a path inside the repository, relative to its root (e.g. protos/inventory.pb)", r.DescriptorSet)
		return
	}
	p, err := l.descriptorSet(r.DescriptorSet)
	d.deps = append(d.deps, p.dep)
	if err != nil {
		d.errorf(ptr+"/descriptorSet", "%v", err)
		return
	}
	m, err := p.set.Method(r.Method)
	if err != nil {
		if errors.Is(err, protoset.ErrBadName) {
			return // the schema's pattern reported it
		}
		d.errorf(ptr+"/method", "descriptor set %s: %v", r.DescriptorSet, err)
		return
	}
	r.Descriptor = m
}
