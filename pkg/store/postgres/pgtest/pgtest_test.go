package pgtest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/store/postgres/pgtest"
)

var pg pgtest.Shared

func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }

func TestDatabasesAreSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := pg.NewDatabase(t), pg.NewDatabase(t)
	require.NotEqual(t, a.Name, b.Name)

	ca, err := a.Connect(ctx)
	require.NoError(t, err)
	defer ca.Close(ctx)
	_, err = ca.Exec(ctx, "CREATE TABLE only_in_a (x int)")
	require.NoError(t, err)

	cb, err := b.Connect(ctx)
	require.NoError(t, err)
	defer cb.Close(ctx)
	var n int
	require.NoError(t, cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n))
	require.Zero(t, n)

	var fsync string
	require.NoError(t, ca.QueryRow(ctx, "SHOW fsync").Scan(&fsync))
	require.Equal(t, "off", fsync)
}

func TestStopStartKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pgtest.New(t)
	db := c.NewDatabase(t)

	conn, err := db.Connect(ctx)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
	require.NoError(t, err)

	require.NoError(t, c.Stop(ctx))
	require.False(t, c.Running())
	_, err = conn.Exec(ctx, "SELECT 1")
	require.Error(t, err, "the connection is cut when the server stops")
	_, err = db.Connect(ctx)
	require.Error(t, err, "no server to connect to")

	require.NoError(t, c.Start(ctx))
	conn, err = db.Connect(ctx)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var x int
	require.NoError(t, conn.QueryRow(ctx, "SELECT x FROM kept").Scan(&x))
	require.Equal(t, 42, x)

	// The unix socket works too.
	sock := db
	sock.Host = c.SocketDir()
	sc, err := sock.Connect(ctx)
	require.NoError(t, err)
	require.NoError(t, sc.Close(ctx))
}

func TestMissingBinariesSayHowToInstall(t *testing.T) {
	_, err := pgtest.Launch(context.Background(), pgtest.Options{BinDir: t.TempDir()})
	require.ErrorContains(t, err, "apt-get install -y postgresql")
}
