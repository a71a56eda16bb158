package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// listBuild is a List made by Publish, with what to undo if the publish
// fails (the references taken on added items) and what to let go once it
// succeeded (the old list's items that were not carried over).
type listBuild struct {
	list    *List
	items   items
	added   []int32
	old     items
	dropped []int32
}

// buildList turns the published items of type t into a List, given the
// proxy's previous List of that type (nil on its first publish). Work is
// proportional to what changed: messages the old list held at the same
// place are carried over by pointer comparison, only the others are
// looked up (and encoded, the first time any proxy publishes them). A type
// whose content did not change keeps its version; a changed type gets
// version (made distinct when the caller reused the old one).
func (c *Cache) buildList(t Type, its items, old *List, version string) (listBuild, error) {
	var oldItems items
	if old != nil {
		if its.same(old.items) {
			return listBuild{list: old}, nil
		}
		oldItems = old.items
	}
	w, err := its.walk(oldItems)
	if errors.Is(err, errUnsorted) {
		its = its.sorted()
		w, err = its.walk(oldItems)
	}
	var dup duplicateError
	switch {
	case errors.As(err, &dup):
		return listBuild{}, fmt.Errorf("two %s resources are named %q", t.URL(), dup.name)
	case errors.Is(err, errNoName):
		return listBuild{}, fmt.Errorf("a %s resource has no name", t.URL())
	case err != nil:
		return listBuild{}, fmt.Errorf("%s resources: %w", t.URL(), err)
	}
	b := listBuild{items: its, old: oldItems, dropped: w.dropped}
	var added []*Entry // to pair with the dropped ones
	if old != nil {
		added = make([]*Entry, 0, len(w.added))
	}
	for k, i := range w.added {
		e, err := c.memo.acquire(t, its.msg(int(i)), its.name(int(i)))
		if err != nil {
			b.added = w.added[:k]
			b.rollback(c.memo)
			return listBuild{}, fmt.Errorf("%s %q: %w", t.URL(), its.name(int(i)), err)
		}
		if old != nil {
			added = append(added, e)
		}
	}
	b.added = w.added

	// Added and dropped items are both in name order: pair them by name to
	// tell replaced messages with new content from equal copies.
	var changed []uint64 // bitmap of the new items that differ from the old ones
	var removed []string
	k, d := 0, 0
	mark := func(i int32) {
		if changed == nil {
			changed = make([]uint64, (its.len()+63)/64)
		}
		changed[i/64] |= 1 << (i % 64)
	}
	for k < len(added) || d < len(w.dropped) {
		var oldName string
		if d < len(w.dropped) {
			oldName = oldItems.name(int(w.dropped[d]))
		}
		switch {
		case d == len(w.dropped) || (k < len(added) && added[k].name < oldName):
			mark(b.added[k])
			k++
		case k == len(added) || oldName < added[k].name:
			removed = append(removed, oldName)
			d++
		default:
			oe := c.memo.lookup(t, oldItems.msg(int(w.dropped[d])), oldName)
			if oe == nil || oe.hash != added[k].hash {
				mark(b.added[k])
			}
			k, d = k+1, d+1
		}
	}

	l := &List{memo: c.memo, typ: t, items: its, id: c.ids.Add(1), version: version}
	b.list = l
	if old == nil {
		return b, nil
	}
	l.prev, l.diff = old.id, true
	if changed == nil && len(removed) == 0 {
		l.version = old.version // the same content in other messages
		return b, nil
	}
	if old.version == version {
		// The content changed under an unchanged version: never let two
		// contents share a version.
		l.version = version + "+" + typeHash(l)
	}
	if len(removed) <= maxRemoved(its.len()) {
		l.changed, l.removed = changed, removed
	} else {
		l.diff = false
	}
	return b, nil
}

// rollback releases the references the build took.
func (b *listBuild) rollback(m *memo) {
	for _, i := range b.added {
		m.release(b.items.msg(int(i)), b.items.name(int(i)))
	}
	b.added = nil
}

// commit releases the old list's items that the new one does not hold.
func (b *listBuild) commit(m *memo) {
	for _, i := range b.dropped {
		m.release(b.old.msg(int(i)), b.old.name(int(i)))
	}
}

// typeHash is a short hash of a list's content.
func typeHash(l *List) string {
	h := sha256.New()
	for i := range l.Len() {
		h.Write([]byte(l.Name(i)))
		h.Write([]byte{0})
		if e := l.Entry(i); e != nil {
			h.Write([]byte(e.hash))
		}
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:6])
}

// releaseList releases every item of l.
func (m *memo) releaseList(l *List) {
	if l == nil {
		return
	}
	for i := range l.items.len() {
		m.release(l.items.msg(i), l.items.name(i))
	}
}
