//go:build unix

package config

import (
	"io/fs"
	"syscall"
)

// folderID names a folder whatever path reaches it: its device and inode.
type folderID struct {
	dev, ino uint64
	path     string // where the platform gives no inode
}

func idOf(abs string, st fs.FileInfo) folderID {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return folderID{dev: uint64(s.Dev), ino: uint64(s.Ino)}
	}
	return pathID(abs)
}
