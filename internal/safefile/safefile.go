// Package safefile reads files a repository under review names, which may be
// hostile: only regular files (a symlink to /dev/zero, a named pipe or a
// socket would read forever or block), never more than a bound.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular: the path (its symlinks followed) is a device, a named
// pipe, a socket or a folder.
var ErrNotRegular = errors.New("not a regular file (a device, named pipe or socket): refused")

// TooLargeError: the file holds more than the bound.
type TooLargeError struct{ Max int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("larger than %d bytes: refused", e.Max)
}

// Read returns the bytes of the regular file at path, at most max of them.
// It opens without blocking (a named pipe with no writer would block the
// open itself), checks the open file's mode, and reads through a limit, so
// that neither a device that reports size 0 nor a file growing while it
// is read can make it hold more than max+1 bytes. Errors wrap
// fs.ErrNotExist when the file does not exist.
func Read(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: ErrNotRegular}
	}
	if st.Size() > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &TooLargeError{Max: max}}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &TooLargeError{Max: max}}
	}
	return b, nil
}
