package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Decoding JSON into Go values costs far more memory than the text: an
// element of [{"a":[]}] is 10 bytes on the wire and a few hundred once
// decoded into map[string]any. A body is therefore measured before anything
// decodes it: its nesting depth (apiPortal.maxJsonDepth) and its number of
// values (apiPortal.maxJsonValues) bound what decoding it can cost.

// Messages of bodies refused by their JSON bounds.
const (
	MsgJSONTooDeep = "请求体 JSON 嵌套过深"
	MsgJSONTooMany = "请求体 JSON 元素过多"
)

// ReasonJSON is the refusal reason of a body beyond its JSON bounds.
const ReasonJSON = "json_limit"

var (
	errJSONDepth  = errors.New("JSON nesting too deep")
	errJSONValues = errors.New("too many JSON values")
)

// jsonBounds measures b without allocating (what it says of text that is
// not JSON means nothing): it fails with errJSONDepth when arrays and objects nest
// deeper than maxDepth and with errJSONValues when b holds more than
// maxValues values (objects, arrays, strings, numbers, true, false, null;
// object keys are not counted).
func jsonBounds(b []byte, maxDepth, maxValues int) error {
	depth, values := 0, 0
	// inObject[d] tells whether the container at depth d is an object,
	// key whether the next string there is a key. The depth check keeps
	// the stack within maxDepth.
	var stack [64]bool
	inObject := stack[:0]
	key := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case ' ', '\t', '\r', '\n', ':':
		case ',':
			key = depth > 0 && inObject[depth-1]
		case '{', '[':
			values++
			depth++
			if depth > maxDepth {
				return errJSONDepth
			}
			inObject = append(inObject, c == '{')
			key = c == '{'
		case '}', ']':
			depth--
			if depth < 0 {
				return nil // not JSON: never decoded as JSON
			}
			inObject = inObject[:depth]
			key = false
		case '"':
			if !key {
				values++
			}
			key = false
			// Skip to the closing quote; an escaped character never closes.
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		default:
			// A number or a literal: skip to its end.
			values++
			for i+1 < len(b) && !isJSONDelim(b[i+1]) {
				i++
			}
		}
		if values > maxValues {
			return errJSONValues
		}
	}
	return nil
}

func isJSONDelim(c byte) bool {
	switch c {
	case ',', ']', '}', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// checkJSON refuses a JSON body beyond apiPortal.maxJsonDepth (400) or
// apiPortal.maxJsonValues (413), whatever its Content-Type says: the flow
// decodes every body that is valid JSON. A body that is not JSON is text to
// the flow and costs no more than its bytes.
func (h *Handler) checkJSON(c *Call) *fault {
	p := c.Snap.Settings.APIPortal
	err := jsonBounds(c.Body, p.MaxJSONDepth, p.MaxJSONValues)
	if err != nil && !json.Valid(c.Body) {
		return nil
	}
	switch err {
	case errJSONDepth:
		return refuse(ReasonJSON, http.StatusBadRequest, fmt.Sprintf("%s（最多 %d 层，apiPortal.maxJsonDepth）", MsgJSONTooDeep, p.MaxJSONDepth))
	case errJSONValues:
		return refuse(ReasonJSON, http.StatusRequestEntityTooLarge, fmt.Sprintf("%s（最多 %d 个，apiPortal.maxJsonValues）", MsgJSONTooMany, p.MaxJSONValues))
	}
	return nil
}
