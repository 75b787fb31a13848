package config

import (
	"os"
	"time"
)

// FileStat is what a file's metadata says of its bytes: any write changes
// the size, the modification time or (whatever a tool does to the
// modification time afterwards) the change time; a replaced file has
// another inode. Equal FileStats stand for equal bytes once the file has
// settled (see Settled). The loader and the git revision reader share it.
type FileStat struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

// RacyWindow: a file written this shortly before it was read may be
// written again within the same timestamp tick without its metadata
// changing, so its metadata is not trusted the next time (it is read and
// hashed again, as git does with "racily clean" index entries).
const RacyWindow = 2 * time.Second

// Settled reports whether st, the metadata of the file at abs whose n
// bytes were read from start on, can stand for those bytes next time: the
// file was last written more than window before start, and not during the
// read (its size is n and its metadata unchanged after it).
func Settled(abs string, st FileStat, n int, start time.Time, window time.Duration) bool {
	if start.Sub(time.Unix(0, st.mtime)) <= window || start.Sub(time.Unix(0, st.ctime)) <= window || int64(n) != st.size {
		return false
	}
	after, err := os.Stat(abs)
	if err != nil {
		return false
	}
	s2, ok := StatOf(after)
	return ok && s2 == st
}
