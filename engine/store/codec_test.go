package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestValuesAreCompressed: records are stored as zstd frames, a third or
// less of their JSON, and a record stored as plain JSON (by an earlier
// version) still reads.
func TestValuesAreCompressed(t *testing.T) {
	db := openDB(t)
	l := openLog(t, db, LogOptions{Sync: true})
	rec := sample("z1", "api.z", 200, time.Time{})
	l.Append(rec)
	var stored, js []byte
	db.Bolt().View(func(tx *bbolt.Tx) error {
		_, v := tablesOf(tx).log.Cursor().Last()
		stored = bytes.Clone(v)
		return nil
	})
	if !bytes.HasPrefix(stored, zstdMagic) {
		t.Fatalf("stored value is not a zstd frame: %.40q", stored)
	}
	js, err := plain(stored)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(js, &back); err != nil || back.TraceID != rec.TraceID {
		t.Fatalf("decompressed: %v %+v", err, back)
	}
	t.Logf("stored %d bytes for %d bytes of JSON", len(stored), len(js))
	if len(stored)*2 > len(js) {
		t.Errorf("stored %d bytes for %d bytes of JSON: less than half saved", len(stored), len(js))
	}

	// A plain JSON value written directly, as before compression.
	var k key
	copy(k[:], []byte("0123456789ab"))
	legacy := `{"id":"legacy","traceId":"legacy-trace","apiCode":"api.old","httpStatus":200}`
	if err := db.Bolt().Update(func(tx *bbolt.Tx) error {
		t := tablesOf(tx)
		if err := t.log.Put(k[:], []byte(legacy)); err != nil {
			return err
		}
		return t.index(k[:], "legacy-trace", "api.old")
	}); err != nil {
		t.Fatal(err)
	}
	list, _, err := l.Page(Filter{TraceID: "legacy-trace"}, 1, 10)
	if err != nil || len(list) != 1 || list[0].APICode != "api.old" {
		t.Fatalf("legacy record: %v %+v", err, list)
	}
}
