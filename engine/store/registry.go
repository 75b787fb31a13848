package store

import (
	"fmt"

	"go.etcd.io/bbolt"
)

var (
	bucketRegistryServers  = []byte("registry_servers")
	bucketRegistryServices = []byte("registry_services")
)

// Registry tables: the third-party service registry's servers and services
// (DESIGN.md section 6), as JSON values by key, in the same file as the
// access log. engine/registry owns what the values mean.
const (
	TableServers  = "servers"
	TableServices = "services"
)

// RegistryTables is the registry's local copy in bbolt.
type RegistryTables struct{ db *DB }

// Registry returns the registry tables of the file.
func (db *DB) Registry() *RegistryTables { return &RegistryTables{db} }

func registryBucket(tx *bbolt.Tx, table string) (*bbolt.Bucket, error) {
	switch table {
	case TableServers:
		return tx.Bucket(bucketRegistryServers), nil
	case TableServices:
		return tx.Bucket(bucketRegistryServices), nil
	}
	return nil, fmt.Errorf("registry: no table %q", table)
}

// Put stores value under key, replacing what was there.
func (r *RegistryTables) Put(table, key string, value []byte) error {
	return r.db.bolt.Update(func(tx *bbolt.Tx) error {
		b, err := registryBucket(tx, table)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), value)
	})
}

// Get returns the value of key and whether it exists.
func (r *RegistryTables) Get(table, key string) ([]byte, bool, error) {
	var out []byte
	err := r.db.bolt.View(func(tx *bbolt.Tx) error {
		b, err := registryBucket(tx, table)
		if err != nil {
			return err
		}
		if v := b.Get([]byte(key)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, out != nil, err
}

// All returns every entry of table.
func (r *RegistryTables) All(table string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := r.db.bolt.View(func(tx *bbolt.Tx) error {
		b, err := registryBucket(tx, table)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}

// Delete removes key and reports whether it existed.
func (r *RegistryTables) Delete(table, key string) (bool, error) {
	found := false
	err := r.db.bolt.Update(func(tx *bbolt.Tx) error {
		b, err := registryBucket(tx, table)
		if err != nil {
			return err
		}
		found = b.Get([]byte(key)) != nil
		return b.Delete([]byte(key))
	})
	return found, err
}

// Replace makes table hold exactly entries (a copy from the shared store).
func (r *RegistryTables) Replace(table string, entries map[string][]byte) error {
	return r.db.bolt.Update(func(tx *bbolt.Tx) error {
		b, err := registryBucket(tx, table)
		if err != nil {
			return err
		}
		var stale [][]byte
		if err := b.ForEach(func(k, _ []byte) error {
			if _, keep := entries[string(k)]; !keep {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		for k, v := range entries {
			if old := b.Get([]byte(k)); old != nil && string(old) == string(v) {
				continue
			}
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}
