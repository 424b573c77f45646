package command

import (
	"container/list"
	"sync"
)

// cache keeps the newest known state of recently used aggregates, so that a command loads
// nothing from the store. It need not be fresh: every append names the version the state
// was built at, a stale entry makes the append fail with a version conflict, and the
// handler then reloads. Least recently used entries go first once it is full.
type cache[S any] struct {
	mu    sync.Mutex
	max   int
	items map[string]*list.Element
	order *list.List // front: most recently used
}

type cached[S any] struct {
	stream string
	state  S
	exists bool   // the stream has events
	ver    uint64 // version of the last event
	pos    uint64 // position of the commit that holds it
	hash   string // chain hash of the last event
}

func newCache[S any](max int) *cache[S] {
	return &cache[S]{max: max, items: map[string]*list.Element{}, order: list.New()}
}

func (c *cache[S]) get(stream string) (cached[S], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[stream]
	if !ok {
		return cached[S]{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(cached[S]), true
}

// put stores e unless the cache already holds a newer version of the stream (two requests
// may finish out of order).
func (c *cache[S]) put(e cached[S]) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.stream]; ok {
		if old := el.Value.(cached[S]); old.exists && e.exists && old.ver > e.ver {
			return
		}
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.items[e.stream] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(cached[S]).stream)
	}
}

func (c *cache[S]) drop(stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[stream]; ok {
		c.order.Remove(el)
		delete(c.items, stream)
	}
}
