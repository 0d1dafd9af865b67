package mailbox

import (
	pa "github.com/asynkron/protoactor-go/actor"
)

// Envelope is one message on the link.
type Envelope struct {
	Lane    Lane              // the queue it went through, kept across the link
	Target  *pa.PID           // nil only for messages to the link itself
	Sender  *pa.PID           // optional
	Header  map[string]string // optional; empty maps are not sent
	Message any               // the user's value, or a protoactor system message
	// Size is set by the receiving endpoint: the bytes the decoded message
	// was charged (see WithMaxDecoded); with WithManualRelease, the Handler
	// gives them back with Endpoint.Release once the message is processed.
	Size int64
}
