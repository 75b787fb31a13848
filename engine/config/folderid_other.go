//go:build !unix

package config

import "io/fs"

// folderID names a folder whatever path reaches it. Without a device and
// inode (not a Unix system) the path with its symlinks resolved stands in.
type folderID struct {
	dev, ino uint64
	path     string
}

func idOf(abs string, _ fs.FileInfo) folderID { return pathID(abs) }
