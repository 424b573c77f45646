package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/einvoice/spaceorders/eventstore"
)

// ExportFormat names the export's format in its trailer.
const ExportFormat = "spaceorders-log/1"

// The export format: JSON lines, UTF-8, one per event in global order, each the
// eventstore.Envelope exactly as it marshals (eventId, stream, type, schemaVersion,
// streamVersion, position, index, count, recordedAt, payload, metadata with prevHash), then
// one last line {"trailer":{...}} with the format, the event count, the head position and
// the log digest. A file without its trailer is incomplete. Positions and recordedAt are the
// source store's; neither enters the event hashes, so the digest survives a move.

// Trailer closes an exported log.
type Trailer struct {
	Format     string    `json:"format"`
	Events     uint64    `json:"events"`
	Head       uint64    `json:"head"`
	Digest     string    `json:"digest"`
	ExportedAt time.Time `json:"exportedAt"`
	// DensePositions says the source store's positions are dense (JetStream): a position
	// missing between two lines is then damage.
	DensePositions bool `json:"densePositions,omitempty"`
}

type exportLine struct {
	eventstore.Envelope
	Trailer *Trailer `json:"trailer,omitempty"`
}

// Export writes the whole log, up to the head it has when the export begins, to w.
// It returns the log digest, which the trailer carries too.
func Export(ctx context.Context, store eventstore.Store, w io.Writer, progress Progress) (Digest, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var (
		dig  Digester
		line []byte
	)
	err := readAll(ctx, store, 0, progress, func(env eventstore.Envelope) error {
		dig.Add(env)
		var err error
		if line, err = json.Marshal(env); err != nil {
			return fmt.Errorf("export %s version %d: %w", env.Stream, env.StreamVersion, err)
		}
		bw.Write(line)
		return bw.WriteByte('\n')
	})
	if err != nil {
		return Digest{}, err
	}
	d := dig.Digest()
	t, _ := json.Marshal(struct {
		Trailer Trailer `json:"trailer"`
	}{Trailer{Format: ExportFormat, Events: d.Events, Head: d.Position, Digest: d.Sum, ExportedAt: time.Now().UTC(),
		DensePositions: eventstore.HasDensePositions(store)}})
	bw.Write(t)
	bw.WriteByte('\n')
	if err := bw.Flush(); err != nil {
		return Digest{}, fmt.Errorf("export: %w", err)
	}
	return d, nil
}

// ReadExport calls fn for each event line of an exported log, with its line number, and
// returns the trailer (nil when the file has none). A line that is neither an event nor the
// trailer, or an event after the trailer, answers a *Break of kind Unreadable.
func ReadExport(r io.Reader, fn func(env eventstore.Envelope, line int) error) (*Trailer, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var trailer *Trailer
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			var l exportLine
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				return trailer, &Break{Kind: Unreadable, At: Place{Line: n}, Detail: fmt.Sprintf("not an event: %v", jerr)}
			}
			switch {
			case trailer != nil:
				return trailer, &Break{Kind: Unreadable, At: Place{Line: n}, Detail: "a line follows the trailer"}
			case l.Trailer != nil:
				trailer = l.Trailer
			case l.Stream == "":
				return trailer, &Break{Kind: Unreadable, At: Place{Line: n}, Detail: "an event without a stream"}
			default:
				if ferr := fn(l.Envelope, n); ferr != nil {
					return trailer, ferr
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return trailer, nil
		}
		if err != nil {
			return trailer, fmt.Errorf("read line %d: %w", n, err)
		}
	}
}

// VerifyExport checks an exported log as VerifyStore checks a store, and also that it ends
// with a trailer whose count and digest are those of the events above it.
func VerifyExport(r io.Reader, expect *Expect) (Report, error) {
	v := NewVerifier(expect)
	trailer, err := ReadExport(r, func(env eventstore.Envelope, line int) error {
		if b := v.Add(env, line); b != nil {
			return b
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	rep, b := v.Finish()
	if b != nil {
		return Report{}, b
	}
	if err := checkTrailer(trailer, v); err != nil {
		return Report{}, err
	}
	return rep, nil
}

func checkTrailer(t *Trailer, v *Verifier) error {
	d := v.Digest()
	at := v.last
	switch {
	case t == nil:
		return &Break{Kind: Truncated, At: at, Detail: "the file ends without its trailer: it was cut short, events may be missing"}
	case t.Events != d.Events:
		return &Break{Kind: Truncated, At: at, Detail: fmt.Sprintf("the file holds %d events, its trailer says %d: events were removed or added", d.Events, t.Events)}
	case t.Digest != d.Sum:
		return &Break{Kind: DigestMismatch, At: at, Detail: fmt.Sprintf("the log digest is %s, the trailer says %s: an event was changed or reordered (the last event of a stream, which no later link covers)", d.Sum, t.Digest)}
	}
	return nil
}
