package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// List returns one page of resources of typ in mesh, name order, with the
// total number of matches. The page and the count are sent together in one
// round trip.
func (s *Store) List(ctx context.Context, typ string, opts store.ListOptions) (store.ListResult, error) {
	d, err := s.descriptor(typ)
	if err != nil {
		return store.ListResult{}, err
	}
	if opts.Offset < 0 || opts.Size < 0 {
		return store.ListResult{}, fmt.Errorf("listing %s: offset and size must not be negative", d.Name)
	}
	where, args, err := listFilter(d.Name, opts)
	if err != nil {
		return store.ListResult{}, err
	}
	page := pageQuery(where, len(args), opts)
	pageArgs := args
	if opts.Offset > 0 {
		pageArgs = append(pageArgs, opts.Offset)
	}
	if opts.Size > 0 {
		pageArgs = append(pageArgs, opts.Size)
	}
	var (
		rows  []listedRow
		total int
	)
	scope := resource.Key{Mesh: opts.Mesh}
	err = s.do(ctx, "list", d.Name, scope, func(ctx context.Context) error {
		rows, total = rows[:0], 0
		b := &pgx.Batch{}
		b.Queue("SELECT count(*) FROM atoll_resources WHERE "+where, args...).QueryRow(func(r pgx.Row) error {
			return r.Scan(&total)
		})
		b.Queue(page, pageArgs...).Query(func(rs pgx.Rows) error {
			for rs.Next() {
				var lr listedRow
				if err := rs.Scan(&lr.key.Mesh, &lr.key.Name, &lr.version, &lr.spec, &lr.status,
					&lr.labels, &lr.created, &lr.modified); err != nil {
					return err
				}
				rows = append(rows, lr)
			}
			return rs.Err()
		})
		return s.pool.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return store.ListResult{}, err
	}
	out := store.ListResult{Items: make([]*resource.Resource, 0, len(rows)), Total: total, NextOffset: -1}
	for i := range rows {
		res, err := rows[i].decode(d, rows[i].key)
		if err != nil {
			return store.ListResult{}, err
		}
		out.Items = append(out.Items, res)
	}
	if next := opts.Offset + len(out.Items); opts.Size > 0 && len(out.Items) == opts.Size && next < total {
		out.NextOffset = next
	}
	return out, nil
}

const columns = "mesh, name, version, spec, status, labels, creation_time, modification_time"

// pageQuery renders the query of one page. A page with a size first picks
// its keys from the primary key index alone (skipping Offset index entries
// is much cheaper than skipping Offset table rows) and then fetches just
// those rows; an unbounded list reads the rows directly.
func pageQuery(where string, nargs int, opts store.ListOptions) string {
	var window string
	if opts.Offset > 0 {
		nargs++
		window += " OFFSET $" + strconv.Itoa(nargs)
	}
	if opts.Size > 0 {
		nargs++
		window += " LIMIT $" + strconv.Itoa(nargs)
	}
	if opts.Size == 0 {
		return "SELECT " + columns + " FROM atoll_resources WHERE " + where + " ORDER BY mesh, name" + window
	}
	return "SELECT r." + strings.ReplaceAll(columns, ", ", ", r.") + ` FROM (
	SELECT mesh, name FROM atoll_resources WHERE ` + where + ` ORDER BY mesh, name` + window + `
) AS k JOIN atoll_resources AS r ON r.type = $1 AND r.mesh = k.mesh AND r.name = k.name
ORDER BY r.mesh, r.name`
}

type listedRow struct {
	row
	key resource.Key
}

// listFilter renders the WHERE clause of a List and its arguments.
func listFilter(typ string, opts store.ListOptions) (string, []any, error) {
	conds := []string{"type = $1"}
	args := []any{typ}
	if opts.Mesh != "" {
		args = append(args, opts.Mesh)
		conds = append(conds, "mesh = $"+strconv.Itoa(len(args)))
	}
	if len(opts.Labels) > 0 {
		b, err := json.Marshal(opts.Labels)
		if err != nil {
			return "", nil, fmt.Errorf("listing %s: encoding label filter: %w", typ, err)
		}
		args = append(args, b)
		conds = append(conds, "labels @> $"+strconv.Itoa(len(args))+"::jsonb")
	}
	if opts.NameContains != "" {
		args = append(args, opts.NameContains)
		conds = append(conds, "strpos(name, $"+strconv.Itoa(len(args))+") > 0")
	}
	return strings.Join(conds, " AND "), args, nil
}
