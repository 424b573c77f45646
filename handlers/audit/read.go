package audit

import (
	"context"
	"fmt"

	"github.com/einvoice/spaceorders/eventstore"
)

// PageSize is how many events one ReadAll call asks for in the long reads of this package.
const PageSize = 2000

// readAll calls fn for every event with Position > after, up to the head the log had when
// the read began (a log that keeps growing is read as the snapshot it was), page by page.
func readAll(ctx context.Context, store eventstore.Store, after uint64, progress Progress, fn func(eventstore.Envelope) error) error {
	if progress == nil {
		progress = NoProgress{}
	}
	defer progress.Done()
	head, err := store.Head(ctx)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	progress.Start(head)
	for after < head {
		page, err := store.ReadAll(ctx, after, PageSize)
		if err != nil {
			return fmt.Errorf("read the log after position %d: %w", after, err)
		}
		if len(page) == 0 {
			break
		}
		n := 0
		for _, env := range page {
			if env.Position > head {
				break
			}
			if err := fn(env); err != nil {
				return err
			}
			n++
		}
		after = page[len(page)-1].Position
		progress.Advance(after, n)
	}
	return nil
}
