package store

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
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

// TestEncoderHistoryIsSmall: the record encoder holds well under a
// megabyte once it has compressed a record (it held over 4 MB with the
// default window), and a typical record's frame is byte for byte what the
// default window gave, so the stored format does not change.
func TestEncoderHistoryIsSmall(t *testing.T) {
	js, err := json.Marshal(sample("h1", "api.h", 200, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := mustEncoder()
	got := e.EncodeAll(js, nil)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("a fresh record encoder allocated %d KB to compress %d bytes", grew>>10, len(js))
	}
	old, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false), zstd.WithEncoderDictRaw(recordDictID, recordDict))
	if err != nil {
		t.Fatal(err)
	}
	if want := old.EncodeAll(js, nil); !bytes.Equal(got, want) {
		t.Errorf("frame differs from the default window's:\n got %x\nwant %x", got, want)
	}
	if back, err := plain(got); err != nil || !bytes.Equal(back, js) {
		t.Errorf("round trip: %v", err)
	}
}

func BenchmarkCompressRecord(b *testing.B) {
	js, _ := json.Marshal(benchRecord(1))
	var dst []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst = compress(dst[:0], js)
	}
}
