// Package call is what the portal and the admin listener's debug invoke
// share about one call of an API: running its flow to the envelope's
// status, message and response (Run), and the access-log record of what
// happened (Record). Both build on it, so neither imports the other and a
// debug call is recorded exactly as a portal call is.
package call

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"time"

	"github.com/databus-gateway/databus/engine/flow"
)

// MsgOK is the envelope's message of an answered call.
const MsgOK = "OK"

// Outcome is what a flow run answers.
type Outcome struct {
	Status   int
	Message  string
	Response []byte // the envelope's response as JSON; nil: null

	// Stream is the unread body of a streaming output, when Run was asked
	// to pass streams through; Response is nil then. ContentType is the
	// upstream's.
	Stream      io.Reader
	ContentType string

	// Steps are the flow's step results.
	Steps []flow.StepResult
	// Err is the flow's failure (a step, a transform, the input schema);
	// nil when the flow answered.
	Err *flow.Error
	// EncodeErr is set when the flow answered but its output could not be
	// encoded as JSON: the outcome is a 502.
	EncodeErr error

	res *flow.Result
}

// Run runs f for req. With passStream, a streaming output is left unread
// in Outcome.Stream for the caller to copy out; otherwise it is read
// (bounded) into Response. Close the Outcome when done with it.
func Run(ctx context.Context, f *flow.Flow, req *flow.Request, passStream bool) *Outcome {
	res := f.Run(ctx, req)
	o := &Outcome{res: res, Steps: res.Inv.Results}
	if res.Err != nil {
		o.Err = res.Err
		o.Status, o.Message = res.Err.Status, res.Err.Message
		if res.ErrResponse != nil {
			o.Response, _ = flow.ValueOutput(res.ErrResponse).JSON()
		}
		return o
	}
	if passStream {
		if stream, ct := res.Output.Stream(); stream != nil {
			o.Status, o.Message, o.Stream, o.ContentType = http.StatusOK, MsgOK, stream, ct
			return o
		}
	}
	body, err := res.Output.JSON()
	if err != nil {
		o.EncodeErr = err
		o.Status, o.Message = http.StatusBadGateway, "flow output could not be encoded: "+err.Error()
		return o
	}
	o.Status, o.Message, o.Response = http.StatusOK, MsgOK, body
	return o
}

// Close releases what the run still holds (an unread stream).
func (o *Outcome) Close() { o.res.Close() }

// NewTraceID makes a 128-bit id, 32 hex digits as W3C trace ids are, that
// starts with the time in milliseconds (as UUIDv7 does) and ends with 80
// random bits. Ids made later sort later, so the access log's trace index
// grows at its end instead of touching a random page per record.
func NewTraceID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

// Millis is d in milliseconds, to the microsecond.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
