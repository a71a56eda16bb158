// Package postgres runs atoll-cp processes against a real, throwaway
// PostgreSQL: schema migrations, several instances on one database, leader
// hand-over, database outages and crashes mid-write.
package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/store/postgres/pgtest"
	"github.com/atoll-mesh/atoll/test/framework"
)

var (
	bins framework.Binaries
	pg   pgtest.Shared
)

func TestMain(m *testing.M) {
	code := pg.Run(m)
	bins.Cleanup()
	os.Exit(code)
}

// storeEnv points atoll-cp at db with a short leader lease.
func storeEnv(db pgtest.Database, extra ...string) []string {
	env := append([]string{"ATOLL_STORE_TYPE=postgres", "ATOLL_STORE_POSTGRES_LEADER_LEASE_DURATION=3s",
		"ATOLL_STORE_POSTGRES_OPERATION_TIMEOUT=3s", "ATOLL_STORE_POSTGRES_CONNECTION_TIMEOUT=1s"}, db.Env()...)
	return append(env, extra...)
}

func migrate(t *testing.T, db pgtest.Database, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bins.Dir(t), "atoll-cp"), append([]string{"migrate"}, args...)...)
	cmd.Env = append(os.Environ(), storeEnv(db)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "atoll-cp migrate %v: %s", args, out)
	return string(out)
}

func timeout(name string) []byte {
	return fmt.Appendf(nil, `{"type":"MeshTimeout","name":%q,"mesh":"default","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"10s"}}]}}`, name)
}

func TestRunRefusesAnUnmigratedSchemaUntilMigrateUp(t *testing.T) {
	db := pg.NewDatabase(t)
	cp := framework.Launch(t, &bins, storeEnv(db)...)
	err := cp.Wait(30 * time.Second)
	require.Error(t, err, "run must refuse an empty database")
	require.Contains(t, cp.Logs(), "atoll-cp migrate up", "the message says what to run")

	out := migrate(t, db, "up")
	require.Contains(t, out, "applied migrations")
	require.Contains(t, migrate(t, db, "up"), "up to date", "migrate up is idempotent")
	require.Contains(t, migrate(t, db, "status"), "up to date")

	cp = framework.StartControlPlane(t, &bins, storeEnv(db)...)
	res := cp.Do(http.MethodGet, "/meshes/default", nil)
	require.Equal(t, http.StatusOK, res.Status, "the default mesh is created: %s", res.Body)
}

func TestTwoInstancesShareOneDatabaseAndHandOverLeadership(t *testing.T) {
	db := pg.NewDatabase(t)
	migrate(t, db, "up")
	a := framework.StartControlPlane(t, &bins, storeEnv(db)...)
	b := framework.StartControlPlane(t, &bins, storeEnv(db)...)

	// A write through one instance is readable through the other within 1 s.
	res := a.Do(http.MethodPut, "/meshes/default/meshtimeouts/shared", timeout("shared"))
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	written := time.Now()
	require.Eventually(t, func() bool {
		return b.Do(http.MethodGet, "/meshes/default/meshtimeouts/shared", nil).Status == http.StatusOK
	}, time.Second, 10*time.Millisecond)
	t.Logf("visible on the other instance after %s", time.Since(written))

	// Exactly one instance leads.
	leaderOf := func() (*framework.ControlPlane, *framework.ControlPlane) {
		var leader, follower *framework.ControlPlane
		require.Eventually(t, func() bool {
			la, _ := a.Metric("atoll_leader")
			lb, _ := b.Metric("atoll_leader")
			switch {
			case la == 1 && lb == 0:
				leader, follower = a, b
			case lb == 1 && la == 0:
				leader, follower = b, a
			default:
				return false
			}
			return true
		}, 10*time.Second, 50*time.Millisecond, "exactly one leader")
		return leader, follower
	}
	leader, follower := leaderOf()

	// Killing the leader moves leadership within the lease time (3 s here).
	leader.Kill()
	killed := time.Now()
	require.Eventually(t, func() bool {
		v, _ := follower.Metric("atoll_leader")
		return v == 1
	}, 3*time.Second+2*time.Second, 50*time.Millisecond, "the survivor takes over within the lease")
	t.Logf("leadership moved %s after SIGKILL (lease 3s)", time.Since(killed))
}

func TestWritersRacingOnOneVersionExactlyOneWins(t *testing.T) {
	db := pg.NewDatabase(t)
	migrate(t, db, "up")
	a := framework.StartControlPlane(t, &bins, storeEnv(db)...)
	b := framework.StartControlPlane(t, &bins, storeEnv(db)...)
	created := a.Do(http.MethodPut, "/meshes/default/meshtimeouts/race", timeout("race"))
	require.Equal(t, http.StatusCreated, created.Status)
	etag := created.Header.Get("ETag")

	const writers = 8
	statuses := make(chan int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		cp := a
		if i%2 == 1 {
			cp = b
		}
		wg.Go(func() {
			statuses <- cp.Do(http.MethodPut, "/meshes/default/meshtimeouts/race", timeout("race"), "If-Match", etag).Status
		})
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	require.Equal(t, map[int]int{http.StatusOK: 1, http.StatusConflict: writers - 1}, counts)
}

func TestDatabaseOutageAnswers503AndTheControlPlaneRecoversByItself(t *testing.T) {
	cluster := pgtest.New(t) // its own server: this test stops it
	db := cluster.NewDatabase(t)
	migrate(t, db, "up")
	cp := framework.StartControlPlane(t, &bins, storeEnv(db)...)
	require.Equal(t, http.StatusCreated, cp.Do(http.MethodPut, "/meshes/default/meshtimeouts/before", timeout("before")).Status)

	ctx := context.Background()
	require.NoError(t, cluster.Stop(ctx))
	res := cp.Do(http.MethodPut, "/meshes/default/meshtimeouts/during", timeout("during"))
	require.Equal(t, http.StatusServiceUnavailable, res.Status, "%s", res.Body)
	require.Contains(t, strings.ToLower(string(res.Body)), "store is unavailable")
	require.Equal(t, http.StatusServiceUnavailable, cp.Do(http.MethodGet, "/meshes/default/meshtimeouts/before", nil).Status)
	require.Eventually(t, func() bool { return !cp.Ready() }, 10*time.Second, 50*time.Millisecond, "/ready reports the outage")

	require.NoError(t, cluster.Start(ctx))
	require.Eventually(t, func() bool {
		return cp.Do(http.MethodPut, "/meshes/default/meshtimeouts/after", timeout("after")).Status == http.StatusCreated
	}, 30*time.Second, 100*time.Millisecond, "writes work again without a restart")
	require.Eventually(t, cp.Ready, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, http.StatusOK, cp.Do(http.MethodGet, "/meshes/default/meshtimeouts/before", nil).Status)
	require.Equal(t, http.StatusNotFound, cp.Do(http.MethodGet, "/meshes/default/meshtimeouts/during", nil).Status,
		"the write refused during the outage was not half-applied")
}

func TestEveryAcknowledgedWriteSurvivesSIGKILL(t *testing.T) {
	db := pg.NewDatabase(t)
	migrate(t, db, "up")
	cp := framework.StartControlPlane(t, &bins, storeEnv(db)...)

	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("burst-%d-%d", w, i)
				if cp.Do(http.MethodPut, "/meshes/default/meshtimeouts/"+name, timeout(name)).Status == http.StatusCreated {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		})
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 200 }, 30*time.Second, 10*time.Millisecond)
	cp.Kill()
	close(stop)
	wg.Wait()

	restarted := framework.StartControlPlane(t, &bins, storeEnv(db)...)
	for _, name := range acked {
		require.Equal(t, http.StatusOK, restarted.Do(http.MethodGet, "/meshes/default/meshtimeouts/"+name, nil).Status,
			"acknowledged write %s is missing after SIGKILL", name)
	}
	t.Logf("%d acknowledged writes all present after SIGKILL", len(acked))
}

func TestGlobalModeRunsOnPostgresAndRefusesZoneOnlyWrites(t *testing.T) {
	db := pg.NewDatabase(t)
	migrate(t, db, "up")
	cp := framework.StartControlPlane(t, &bins, storeEnv(db, "ATOLL_MODE=global")...)
	idx := cp.Do(http.MethodGet, "/", nil).JSON(t)
	require.Equal(t, "global", idx["mode"])
	res := cp.Do(http.MethodPut, "/meshes/default/dataplanes/dp-1",
		[]byte(`{"type":"Dataplane","networking":{"address":"10.0.0.1","inbound":[{"port":80,"tags":{"kuma.io/service":"web"}}]}}`))
	require.Equal(t, http.StatusBadRequest, res.Status)
	require.Contains(t, string(res.Body), "zone control plane")

	memory := framework.Launch(t, &bins, "ATOLL_MODE=global")
	require.Error(t, memory.Wait(30*time.Second), "global mode needs PostgreSQL")
	require.Contains(t, memory.Logs(), "store.type")
}

// TestProxiesOfAKilledInstanceAreMarkedOffline: a proxy connected to an
// instance that is SIGKILLed (and does not come back anywhere) is shown
// offline by the surviving instance within a few lease times, instead of
// online forever.
func TestProxiesOfAKilledInstanceAreMarkedOffline(t *testing.T) {
	db := pg.NewDatabase(t)
	migrate(t, db, "up")
	a := framework.StartControlPlane(t, &bins, storeEnv(db)...)
	b := framework.StartControlPlane(t, &bins, storeEnv(db)...)

	res := a.Do(http.MethodPut, "/meshes/default/dataplanes/web-1", []byte(`{"type":"Dataplane","mesh":"default","name":"web-1",
		"networking":{"address":"127.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}`))
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	res = a.Do(http.MethodPost, "/tokens/dataplane", []byte(`{"mesh":"default","name":"web-1"}`))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	_, err := framework.ConnectADS(t.Context(), a.DialDPServer(t), "default/web-1", strings.TrimSpace(string(res.Body)))
	require.NoError(t, err)

	online := func(cp *framework.ControlPlane) bool {
		var ov struct {
			DataplaneInsight struct {
				Subscriptions []struct {
					DisconnectTime *time.Time `json:"disconnectTime"`
				} `json:"subscriptions"`
			} `json:"dataplaneInsight"`
		}
		r := cp.Do(http.MethodGet, "/meshes/default/dataplanes/web-1/_overview", nil)
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &ov) != nil {
			return false
		}
		subs := ov.DataplaneInsight.Subscriptions
		return len(subs) > 0 && subs[len(subs)-1].DisconnectTime == nil
	}
	require.Eventually(t, func() bool { return online(b) }, 15*time.Second, 100*time.Millisecond, "the other instance shows the proxy online")

	a.Kill()
	killed := time.Now()
	// Lease 3 s: a's presence expires after 3 s; the sweeper runs every
	// lease time on the leader (b, within 3 s) and waits until the
	// subscription is 2 lease times old.
	require.Eventually(t, func() bool { return !online(b) }, 20*time.Second, 200*time.Millisecond,
		"the proxy of the killed instance is shown offline")
	t.Logf("shown offline %s after the SIGKILL (lease 3s)", time.Since(killed).Round(100*time.Millisecond))
	require.Contains(t, b.Logs(), "marked a dataplane offline")
}
