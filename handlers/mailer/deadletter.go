package mailer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// deadLetterDuplicates is the dead-letter stream's de-duplication window: a dead letter is
// published with "mail-<eventId>" as its id, and written again only when the acknowledgement
// of the first was lost, within seconds.
const deadLetterDuplicates = 10 * time.Minute

// Headers of a dead letter; its body is the original integration message.
const (
	HeaderDLSubject  = "Mail-Original-Subject"
	HeaderDLError    = "Mail-Error"
	HeaderDLAttempts = "Mail-Attempts"
	HeaderDLFailedAt = "Mail-Failed-At"
)

// EnsureDeadLetterStream creates or updates the stream that keeps the emails given up, with
// that many replicas on a cluster (0: 1).
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, name, subject string, replicas int) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "notifications whose email could not be sent; listed by the operator",
		Subjects:    []string{subject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  deadLetterDuplicates,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("mailer: dead-letter stream %s: %w", name, err)
	}
	return s, nil
}

// DeadLetter is an email given up.
type DeadLetter struct {
	Seq      uint64    `json:"seq"`
	EventID  string    `json:"eventId"`
	Type     string    `json:"type"`
	OrderID  string    `json:"orderId"`
	Subject  string    `json:"subject"`
	Error    string    `json:"error"`
	Attempts int       `json:"attempts"`
	FailedAt time.Time `json:"failedAt"`
	// Message is the integration message as it was received.
	Message json.RawMessage `json:"message"`
}

// ListDeadLetters returns the dead letters in the stream named stream ("" for the default),
// oldest first. A missing stream means none.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, stream string) ([]DeadLetter, error) {
	if stream == "" {
		stream = DefaultDeadLetterStream
	}
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dead letters %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead letters %s: %w", stream, err)
	}
	var out []DeadLetter
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed by an operator
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		d := DeadLetter{
			Seq:     seq,
			Subject: m.Header.Get(HeaderDLSubject),
			Error:   m.Header.Get(HeaderDLError),
			Message: json.RawMessage(m.Data),
		}
		d.Attempts, _ = strconv.Atoi(m.Header.Get(HeaderDLAttempts))
		d.FailedAt, _ = time.Parse(time.RFC3339Nano, m.Header.Get(HeaderDLFailedAt))
		var n struct {
			EventID string `json:"eventId"`
			Type    string `json:"type"`
			OrderID string `json:"orderId"`
			Stream  string `json:"stream"` // a message from a relay before the notifications contract
		}
		if json.Unmarshal(m.Data, &n) == nil {
			d.EventID, d.Type, d.OrderID = n.EventID, n.Type, n.OrderID
			if id, ok := strings.CutPrefix(n.Stream, "order-"); ok && d.OrderID == "" {
				d.OrderID = id
			}
		}
		if !json.Valid(m.Data) {
			d.Message = nil
		}
		out = append(out, d)
	}
	return out, nil
}
