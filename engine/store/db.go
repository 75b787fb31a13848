package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors a caller acts on; always wrapped, test with errors.Is.
var (
	// ErrLocked: the bbolt file is locked by another process (or another
	// open DB in this one) and stayed locked past Open's timeout.
	ErrLocked = errors.New("database file is locked")
	// ErrNotFound: no record with that id.
	ErrNotFound = errors.New("not found")
	// ErrBadCursor: a paging cursor that is not a record id (24 hex digits).
	ErrBadCursor = errors.New("not a record id (24 hex digits)")
)

// DefaultOpenTimeout is how long Open waits for the file lock when given no
// timeout. bbolt's own default is to wait forever, which would hang a second
// server silently.
const DefaultOpenTimeout = 2 * time.Second

var (
	bucketLog   = []byte("accesslog")
	bucketTrace = []byte("accesslog_trace")
	bucketAPI   = []byte("accesslog_api")
	bucketMeta  = []byte("accesslog_meta")
	metaCount   = []byte("count")
)

// DB is the gateway's bbolt file (access log now, the service registry later).
// It is owned by the server, not by a Snapshot: it is opened once at boot and
// survives every reload.
type DB struct {
	bolt *bbolt.DB
	path string
}

// Open opens (creating it and its parent directories if needed) the bbolt
// file at path. If another process holds the file's lock for longer than
// timeout (<= 0: DefaultOpenTimeout), the error wraps ErrLocked and names
// the file.
func Open(path string, timeout time.Duration) (*DB, error) {
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("storage.path %s: %w", path, err)
		}
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: timeout,
		// The access log deletes as much as it writes; the hashmap freelist
		// keeps page allocation fast in a file with many free pages.
		FreelistType: bbolt.FreelistMapType,
		// The freelist is rebuilt from the file when it opens instead of
		// being written at every commit: less to write per transaction.
		NoFreelistSync: true,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("storage.path %s: still locked after %s; another databus process probably holds it (stop it, or give this one another storage.path): %w",
			path, timeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("storage.path %s: %w", path, err)
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketLog, bucketTrace, bucketAPI, bucketMeta, bucketRegistryServers, bucketRegistryServices} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("storage.path %s: %w", path, err)
	}
	return &DB{bolt: b, path: path}, nil
}

// Close closes the file. Close every AccessLog on it first.
func (db *DB) Close() error { return db.bolt.Close() }

// Check reports whether the file is open and readable: a read transaction,
// which takes no write lock and reads no page (readiness).
func (db *DB) Check() error {
	if err := db.bolt.View(func(*bbolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("storage %s: %w", db.path, err)
	}
	return nil
}

// Bolt is the underlying handle, for stores that share the file.
func (db *DB) Bolt() *bbolt.DB { return db.bolt }

// Path is the file's path as given to Open.
func (db *DB) Path() string { return db.path }
