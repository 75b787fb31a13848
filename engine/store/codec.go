package store

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Access-log values are zstd frames of the record's JSON, compressed
// against a built-in dictionary: a record is about 1.3 KB of JSON whose keys
// and common values repeat from record to record, so the dictionary lets
// each small frame refer to them. Compressed, a record takes a fraction of
// the pages, so the writer touches, writes and syncs that much less and the
// file (whose pages the process maps) grows that much slower. Values
// written before compression (plain JSON, starting with '{') still read.
//
// recordDict must never change: every frame names it by recordDictID. A
// better dictionary gets a new id, and the decoder keeps the old one.
const recordDictID = 1

var recordDict = []byte(`{"id":"","traceId":"","apiCode":"","version":"v1","appId":"","tenantId":"","clientIp":"127.0.0.1","method":"POST","path":"/admin-api/databus/api/portal/","requestHeaders":{"Accept":"*/*","Accept-Encoding":"gzip","Content-Length":"","Content-Type":"application/json","Traceparent":"00-","User-Agent":"Go-http-client/1.1","X-Forwarded-For":"","X-Trace-Id":"","Zt-App-Id":"","Zt-Nonce":"","Zt-Signature":"***","Zt-Tenant-Id":"","Zt-Timestamp":"17"},"requestBody":"{\"","responseBody":"{\"","httpStatus":200,"status":0,"errorCode":"","errorMessage":"","startedAt":"2026-","durationMs":0.,"stepResults":[{"id":"start","type":"start","elapsedMs":0},{"id":"","type":"http","request":{"body":"{\"","method":"POST","url":"http://127.0.0.1:"},"response":{"body":"{\"","status":200},"status":200,"elapsedMs":0.,"attempts":1},{"id":"","type":"script","response":{"body":"{\"","status":200},"elapsedMs":0.},{"id":"end","type":"end","elapsedMs":0.}],"extra":{"encrypted":true}}`)

// recordWindow is the encoder's window. The default (8 MB) made the encoder
// keep about 4 MB of history buffer for the process's life, for records
// that are a few KB (bodies are cut at accessLog.maxBodyChars); a record
// up to the window is still one single-segment frame, byte for byte what
// the default window gives, and a larger one still compresses, against
// the last recordWindow bytes.
const recordWindow = 256 << 10

var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	encoder   = mustEncoder()
	decoder   = mustDecoder()
)

func mustEncoder() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false), zstd.WithEncoderDictRaw(recordDictID, recordDict), zstd.WithWindowSize(recordWindow))
	if err != nil {
		panic(err)
	}
	return e
}

func mustDecoder() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(64<<20),
		zstd.WithDecoderDictRaw(recordDictID, recordDict))
	if err != nil {
		panic(err)
	}
	return d
}

// compress appends the stored form of a record's JSON to dst.
func compress(dst, plain []byte) []byte { return encoder.EncodeAll(plain, dst) }

// plain returns the JSON of a stored value.
func plain(v []byte) ([]byte, error) {
	if !bytes.HasPrefix(v, zstdMagic) {
		return v, nil
	}
	out, err := decoder.DecodeAll(v, nil)
	if err != nil {
		return nil, fmt.Errorf("stored record does not decompress: %w", err)
	}
	return out, nil
}
