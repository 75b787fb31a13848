//go:build linux

package gitops

import (
	"io/fs"
	"syscall"
	"time"
)

// statOf is what a file's metadata says of its bytes: any write changes
// the size, the modification time or (whatever a tool does to the
// modification time afterwards) the change time; a replaced file has
// another inode. ok is false where the platform gives less.
func statOf(st fs.FileInfo) (fileStat, bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStat{}, false
	}
	return fileStat{
		dev: uint64(s.Dev), ino: s.Ino, size: s.Size,
		mtime: time.Unix(s.Mtim.Unix()).UnixNano(),
		ctime: time.Unix(s.Ctim.Unix()).UnixNano(),
	}, true
}
