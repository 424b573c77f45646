package projections

import (
	"testing"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/einvoice/spaceorders/eventstore"
)

// The log's signed checkpoints are passed over in silence: they are no domain event, and a
// warning per checkpoint would bury the real ones about unknown types.
func TestCheckpointEventsArePassedOverSilently(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	codec := eventstore.DomainCodec()
	cp := eventstore.Envelope{ID: uuid.New(), Stream: "logcheckpoint-" + uuid.NewString(), Type: eventstore.LogCheckpointType,
		SchemaVersion: 1, Count: 1, Payload: []byte(`{"position":3,"events":3,"digest":"00"}`)}
	d, err := decode(codec, log, cp)
	if err != nil || d.ev != nil {
		t.Fatalf("decode a checkpoint: %+v, %v", d, err)
	}
	if logs.Len() != 0 {
		t.Fatalf("logged %d lines for a checkpoint: %v", logs.Len(), logs.All())
	}
	// An unknown type is still skipped with a warning.
	cp.Type = "SomethingNewRecorded"
	if _, err := decode(codec, log, cp); err != nil || logs.Len() != 1 {
		t.Fatalf("unknown type: %v, %d lines", err, logs.Len())
	}
}
