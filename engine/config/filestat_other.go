//go:build !linux

package config

import "io/fs"

// StatOf: without a change time the metadata cannot stand for the bytes
// (a tool may restore the modification time), so files are always read.
func StatOf(fs.FileInfo) (FileStat, bool) { return FileStat{}, false }
