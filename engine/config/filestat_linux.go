//go:build linux

package config

import (
	"io/fs"
	"syscall"
	"time"
)

// StatOf returns a file's FileStat; ok is false where the platform gives
// less (the metadata cannot stand for the bytes).
func StatOf(st fs.FileInfo) (FileStat, bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return FileStat{}, false
	}
	return FileStat{
		dev: uint64(s.Dev), ino: s.Ino, size: s.Size,
		mtime: time.Unix(s.Mtim.Unix()).UnixNano(),
		ctime: time.Unix(s.Ctim.Unix()).UnixNano(),
	}, true
}
