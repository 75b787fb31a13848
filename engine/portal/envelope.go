package portal

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/databus-gateway/databus/engine/call"
)

// Messages of the envelope, DESIGN.md section 4.
const (
	MsgOK             = call.MsgOK
	MsgIPDenied       = "IP 不在允许范围"
	MsgBadCredential  = "应用凭证无效"
	MsgReplay         = "重复请求"
	MsgBadSignature   = "签名校验失败"
	MsgBadCiphertext  = "报文解密失败"
	MsgNoKey          = "应用未配置加密密钥"
	MsgForbiddenAPI   = "应用无权调用该 API"
	MsgRateLimited    = "请求触发限流策略"
	MsgNotFound       = "API 定义未发布或已下线"
	MsgMethod         = "请求方法不被允许"
	MsgTooLarge       = "请求体过大"
	MsgInternal       = "网关内部错误"
	MsgClockSkewFmt   = "请求到达时间超出 %ds"
	MsgUnavailable    = "网关暂不可用"
	MsgBodyReadFailed = "请求体读取失败"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeEnvelope writes {"code","message","response","traceId"} with code =
// status. response must be valid JSON (nil means null); it is copied as it
// is, so an upstream's JSON passes through without being re-encoded.
func writeEnvelope(w http.ResponseWriter, status int, message string, response []byte, traceID string) {
	bp := bufPool.Get().(*[]byte)
	b := appendEnvelope((*bp)[:0], status, message, response, traceID)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
	*bp = b
	if cap(b) <= 64<<10 {
		bufPool.Put(bp)
	}
}

var jsonContentType = []string{"application/json; charset=utf-8"}

func appendEnvelope(b []byte, status int, message string, response []byte, traceID string) []byte {
	b = append(b, `{"code":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	b = append(b, `,"response":`...)
	if len(response) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, response...)
	}
	b = append(b, `,"traceId":`...)
	b = appendString(b, traceID)
	return append(b, '}')
}

// appendString appends s as a JSON string. Plain ASCII is copied directly;
// anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
